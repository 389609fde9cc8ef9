# frozen_string_literal: true

# Test instrumentation: what forq's Ruby plugin drives through Sidekiq's own
# hooks (server middleware, error handlers, lifecycle events) is appended as
# JSON lines to files in $FORQ_TEST_OUT, for tests/integration/test_ruby.py.
require "json"

# redis-rb 4.8 warns about Sidekiq 6.4's calls on every command.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module TestOut
  def self.append(name, record)
    dir = ENV["FORQ_TEST_OUT"] or return
    line = JSON.generate(record.merge(pid: Process.pid)) + "\n"
    # One write(2) on an O_APPEND file: lines from several processes never mix.
    File.open(File.join(dir, name), "a") { |f| f.syswrite(line) }
  end
end

class RecordingMiddleware
  def call(worker, job, queue)
    TestOut.append("middleware.log",
                   {jid: job["jid"], class: job["class"], wrapped: job["wrapped"], queue: queue,
                    worker: worker.class.name, retry_count: job["retry_count"], phase: "before"})
    yield
    TestOut.append("middleware.log", {jid: job["jid"], phase: "after"})
  rescue Exception => e # rubocop:disable Lint/RescueException
    TestOut.append("middleware.log", {jid: job["jid"], phase: "raised", error: e.class.name})
    raise
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware do |chain|
    chain.add RecordingMiddleware
  end

  config.error_handlers << lambda do |ex, ctx|
    job = ctx[:job] || {}
    TestOut.append("errors.log",
                   {error_class: ex.class.name, message: ex.message, context: ctx[:context],
                    jid: job["jid"], class: job["class"], jobstr: ctx[:jobstr].is_a?(String)})
  end

  %i[startup quiet shutdown].each do |event|
    config.on(event) { TestOut.append("events.log", {event: event}) }
  end
end

# Opens the database connection in the process that loads the app: with
# --prefork that is forq's master, before it forks its workers, which must
# then each get a connection of their own.
Rails.application.config.after_initialize do
  conn_id = nil
  if Sidekiq.server?
    ActiveRecord::Base.connection.execute("SELECT 1")
    conn_id = ActiveRecord::Base.connection.raw_connection.object_id
  end
  TestOut.append("boot.log", {server: Sidekiq.server?, rails_env: Rails.env, conn_id: conn_id,
                              reloader: Sidekiq.options[:reloader].class.name})
end
