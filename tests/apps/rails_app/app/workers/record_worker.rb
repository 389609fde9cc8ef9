# frozen_string_literal: true

# Writes a Record through ActiveRecord, noting what the job saw: whether it
# ran inside Rails' executor, and whether its thread still held a database
# connection when it started (it must not: the executor returns it after
# each job, and a worker must not inherit the one its master held).
class RecordWorker
  include Sidekiq::Worker

  def perform(name, pause = 0)
    held_before = !!ActiveRecord::Base.connection_pool.active_connection?
    sleep(pause) if pause.positive?
    Record.write!(name, jid: jid, held_before: held_before,
                        executor: Rails.application.executor.active?,
                        reloader: Sidekiq.options[:reloader].class.name,
                        server: Sidekiq.server?, rails_env: Rails.env)
  end
end
