# frozen_string_literal: true

# One row per job that wrote to the database: who wrote it, over which
# connection, and what it saw (note, JSON).
class Record < ApplicationRecord
  validates :name, presence: true

  def self.write!(name, note = {})
    conn = connection
    create!(name: name, worker_pid: Process.pid, conn_id: conn.raw_connection.object_id,
            note: JSON.generate(note))
  end
end
