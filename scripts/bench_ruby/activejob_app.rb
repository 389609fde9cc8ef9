# frozen_string_literal: true

# scripts/bench_ruby/activejob_app.rb -- the no-op ActiveJob of the `ruby`
# bench section (scripts/bench_ruby/bench_ruby.py), enqueued through Rails'
# Sidekiq adapter: the payload's class is
# ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper, "wrapped" is
# NoopActiveJob and args is [job.serialize]. Loaded by
#   forq -P 2 --prefork -r scripts/bench_ruby/activejob_app.rb
#   sidekiq -e production -c 10 -q default -r scripts/bench_ruby/activejob_app.rb   (x2)
# and by `ruby -r activejob_app.rb -e 'NoopActiveJob.perform_later'`, which
# makes the one real payload the bench copies for its bulk enqueue.

require "logger"
require "sidekiq"
require "active_job"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

Sidekiq.logger.level = Logger::WARN
Sidekiq.configure_server do |config|
  config.logger.level = Logger::WARN
end

ActiveJob::Base.queue_adapter = :sidekiq
# ActiveJob logs "Enqueued", "Performing" and "Performed" at INFO for every job.
ActiveJob::Base.logger = Logger.new(nil)

class NoopActiveJob < ActiveJob::Base
  queue_as :default

  def perform(*)
  end
end
