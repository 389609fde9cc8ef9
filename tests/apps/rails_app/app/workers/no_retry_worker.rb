# frozen_string_literal: true

# retry: false -- a failure reaches the error handlers and nothing else:
# no retry entry, no dead entry.
class NoRetryWorker
  include Sidekiq::Worker
  sidekiq_options retry: false

  class Refused < StandardError; end

  def perform(tag)
    raise Refused, "refused: #{tag}"
  end
end
