# A plain Sidekiq app (no Rails) that scripts/demo loads into forq with
# `-r examples/ruby_app.rb`: forq loads it once in the master (--prefork) and
# its workers run these classes in-process, exactly as `sidekiq -r` would.
require "sidekiq"

# The app's own server middleware wraps every job, as under Sidekiq.
class Stopwatch
  def call(worker, job, queue)
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
  ensure
    ms = (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0) * 1000
    Sidekiq.logger.info("#{job["class"]} #{job["jid"]} took #{ms.round(2)} ms in pid #{Process.pid}")
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add Stopwatch }
  config.on(:startup) { Sidekiq.logger.info("ruby worker #{Process.pid} started") }
end

class WelcomeJob
  include Sidekiq::Worker

  def perform(name)
    Sidekiq.logger.info("welcome, #{name}")
  end
end

module Billing
  class ChargeJob
    include Sidekiq::Worker
    sidekiq_options retry: 3, backtrace: 5
    sidekiq_retry_in { |count| 10 * (count + 1) }

    def perform(cents)
      raise ArgumentError, "cannot charge #{cents} cents" if cents.negative?
      Sidekiq.logger.info("charged #{cents} cents")
    end
  end
end
