# frozen_string_literal: true

# Takes SIGTERM for itself, as some libraries do, then sleeps for the given
# seconds. forq must still be able to stop the worker that ran it.
class TrapWorker
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(pause = 0)
    Signal.trap("TERM") {}
    TestOut.append("trap.log", {jid: jid})
    sleep(pause) if pause.positive?
  end
end
