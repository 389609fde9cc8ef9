# frozen_string_literal: true

# scripts/bench_ruby/app.rb -- the no-op Sidekiq::Worker of the `ruby` bench
# section (scripts/bench_ruby/bench_ruby.py). The same file is loaded by
#   forq -P 2 --prefork -r scripts/bench_ruby/app.rb
#   sidekiq -e production -c 10 -q default -r scripts/bench_ruby/app.rb   (x2)
# and by `ruby -r app.rb -e 'NoopWorker.perform_async'`, which makes the one
# real payload the bench copies for its bulk enqueue.

require "logger"
require "sidekiq"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

# WARN keeps Sidekiq's per-job "start"/"done" lines (INFO) out of the
# measurement, in Sidekiq and in forq alike.
Sidekiq.logger.level = Logger::WARN
Sidekiq.configure_server do |config|
  config.logger.level = Logger::WARN
end

class NoopWorker
  include Sidekiq::Worker

  def perform(*)
  end
end
