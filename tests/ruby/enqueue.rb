#!/usr/bin/env ruby
# frozen_string_literal: true

# enqueue.rb -- enqueue jobs with the real client of an app's own Sidekiq:
# loads the app as a client (Sidekiq.server? is false) and calls
# perform_async / perform_in / perform_later for each request.
#
# Usage: REDIS_URL=redis://127.0.0.1:PORT/0 ruby enqueue.rb APP REQUESTS_JSON
#   APP        a Rails root (config/environment.rb is loaded; RAILS_ENV
#              defaults to test) or a .rb file (required)
#   REQUESTS   [{"class": "Billing::ChargeJob", "args": [...],
#                "via": "perform_async" (default) | "perform_later" | "perform_in",
#                "in": SECONDS (perform_in)}, ...]
# Prints a JSON list, one {"class", "jid"} per request; for perform_later
# "jid" is Sidekiq's jid (the ActiveJob's provider_job_id) and "job_id" is
# ActiveJob's own id.

require "json"

app, requests = ARGV
abort "usage: enqueue.rb APP REQUESTS_JSON" unless app && requests
abort "REDIS_URL is not set" if ENV["REDIS_URL"].to_s.empty?

if File.directory?(app)
  ENV["RAILS_ENV"] ||= "test"
  require File.join(File.expand_path(app), "config", "environment")
else
  require File.expand_path(app)
end
abort "enqueue.rb: the app loaded in server mode" if Sidekiq.server?
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

out = JSON.parse(requests).map do |req|
  klass = Object.const_get(req.fetch("class"))
  args = req.fetch("args", [])
  case req.fetch("via", "perform_async")
  when "perform_async"
    {"class" => klass.name, "jid" => klass.perform_async(*args)}
  when "perform_in"
    {"class" => klass.name, "jid" => klass.perform_in(req.fetch("in"), *args)}
  when "perform_later"
    job = klass.perform_later(*args)
    raise "#{klass} was not enqueued" unless job
    {"class" => klass.name, "jid" => job.provider_job_id, "job_id" => job.job_id}
  else
    raise ArgumentError, "unknown via #{req["via"].inspect}"
  end
end
puts JSON.generate(out)
