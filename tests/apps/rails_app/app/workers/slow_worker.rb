# frozen_string_literal: true

# Sleeps for the given seconds between a start and a finish record.
class SlowWorker
  include Sidekiq::Worker

  def perform(seconds, tag)
    TestOut.append("slow.log", {jid: jid, tag: tag, phase: "start", at: Time.now.to_f})
    sleep(seconds)
    TestOut.append("slow.log", {jid: jid, tag: tag, phase: "finish", at: Time.now.to_f})
  end
end
