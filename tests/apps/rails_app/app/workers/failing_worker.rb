# frozen_string_literal: true

# Always fails, a few frames deep, so its compressed backtrace has lines
# from this file. Retried twice, one second apart (plus Sidekiq's jitter).
class FailingWorker
  include Sidekiq::Worker
  sidekiq_options retry: 2, backtrace: true
  sidekiq_retry_in { |_count| 1 }

  def perform(tag)
    TestOut.append("attempts.log", {jid: jid, tag: tag})
    charge(tag)
  end

  private

  def charge(tag)
    validate_card(tag)
  end

  def validate_card(tag)
    raise "failing on purpose: #{tag}"
  end
end
