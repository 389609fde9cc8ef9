# frozen_string_literal: true

# A Sidekiq app without Rails, as `forq -r plain_app.rb` (or `sidekiq -r`)
# loads it: workers (one namespaced, one with Sidekiq::Job), a server
# middleware and an error handler. What they see is appended as JSON lines
# to files in $FORQ_TEST_OUT.
require "json"
require "sidekiq"

# redis-rb 4.8 warns about Sidekiq 6.4's calls on every command.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module PlainOut
  def self.append(name, record)
    dir = ENV["FORQ_TEST_OUT"] or return
    line = JSON.generate(record.merge(pid: Process.pid)) + "\n"
    File.open(File.join(dir, name), "a") { |f| f.syswrite(line) }
  end
end

class HelloWorker
  include Sidekiq::Worker

  def perform(who)
    PlainOut.append("hello.log", {jid: jid, who: who})
  end
end

module Billing
  class ChargeJob
    include Sidekiq::Job
    sidekiq_options retry: 1

    def perform(account, cents)
      raise ArgumentError, "negative charge for #{account}" if cents.negative?

      PlainOut.append("charges.log", {jid: jid, class: self.class.name, account: account,
                                      cents: cents})
    end
  end
end

class PlainMiddleware
  def call(worker, job, queue)
    PlainOut.append("middleware.log", {jid: job["jid"], class: job["class"], queue: queue,
                                       worker: worker.class.name})
    yield
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add PlainMiddleware }
  config.error_handlers << lambda do |ex, ctx|
    PlainOut.append("errors.log", {error_class: ex.class.name, message: ex.message,
                                   context: ctx[:context], jid: ctx.dig(:job, "jid")})
  end
  config.on(:startup) { PlainOut.append("events.log", {event: "startup"}) }
  config.on(:shutdown) { PlainOut.append("events.log", {event: "shutdown"}) }
end

PlainOut.append("loaded.log", {server: Sidekiq.server?})
