# frozen_string_literal: true

# Rails finds the app's root by this file. (The app serves no requests.)
require_relative "config/environment"

run Rails.application
