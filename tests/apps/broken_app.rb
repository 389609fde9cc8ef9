# frozen_string_literal: true

# An app that cannot load: the error comes from a few frames deep, so the
# backtrace forq prints names lines of this file.
module BrokenApp
  def self.boot!
    load_settings("config/settings.yml")
  end

  def self.load_settings(path)
    check_settings(path)
  end

  def self.check_settings(path)
    raise ArgumentError, "broken on purpose (#{path})"
  end
end

BrokenApp.boot!
