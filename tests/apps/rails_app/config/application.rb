# frozen_string_literal: true

require_relative "boot"

require "rails"
require "active_record/railtie"
require "active_job/railtie"

# Bundler.require loads sidekiq and sqlite3 from the Gemfile, as in any Rails
# app; without Bundler the app still boots from the system's gems.
if defined?(Bundler)
  Bundler.require(*Rails.groups)
else
  require "sidekiq"
end

module ForqTestApp
  class Application < Rails::Application
    config.load_defaults 6.1
    config.active_job.queue_adapter = :sidekiq
    config.time_zone = "UTC"
  end
end
