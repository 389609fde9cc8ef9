# frozen_string_literal: true

# bench_sidekiq_app.rb -- the app that scripts/bench_sidekiq.py runs under the
# real Sidekiq 6.4 (sidekiq -e production -q default -r this file), to compare
# its drain rate with forq's on the same 100,000 NoopJobs.
#
# BENCH_RELIABLE_FETCH=1 switches the fetch strategy from Sidekiq's BasicFetch
# (BRPOP) to gitlab-sidekiq-fetcher's ReliableFetch (RPOPLPUSH into
# working:queue:default:<fid>, LREM on acknowledge).

require "logger"
require "sidekiq"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

Sidekiq.configure_server do |config|
  # Sidekiq 6 has no log-level flag and dropped -L; stdout goes to a file and
  # WARN keeps the per-job "start"/"done" lines out of the measurement.
  config.logger.level = Logger::WARN
  if ENV["BENCH_RELIABLE_FETCH"] == "1"
    require "sidekiq-reliable-fetch"
    # 0.8.0 reads config.options (Sidekiq.options in 6.4) and sets :fetch to a
    # ReliableFetch instance; it also starts the fetcher's heartbeat thread.
    Sidekiq::ReliableFetch.setup_reliable_fetch!(config)
  end
  fetch = config.options[:fetch]
  config.logger.warn("bench: fetch strategy #{fetch ? fetch.class.name : 'Sidekiq::BasicFetch (default)'}")
end

class NoopJob
  include Sidekiq::Worker

  def perform(*)
  end
end
