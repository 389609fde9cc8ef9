# frozen_string_literal: true

# Creates the test database at $FORQ_TEST_DB (the schema of app/models),
# without booting Rails: ruby db/setup.rb
require "active_record"

ActiveRecord::Base.establish_connection(adapter: "sqlite3", database: ENV.fetch("FORQ_TEST_DB"))
ActiveRecord::Migration.verbose = false
ActiveRecord::Schema.define do
  # WAL lets the workers' writers and the tests' readers not block each other.
  execute "PRAGMA journal_mode=WAL"
  create_table :records, force: true do |t|
    t.string :name, null: false
    t.integer :worker_pid
    t.integer :conn_id, limit: 8
    t.text :note
    t.timestamps
  end
end
