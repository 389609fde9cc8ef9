# frozen_string_literal: true

# Takes SIGTERM for itself, as some libraries do. forq must still be able to
# stop the worker that ran it.
class TrapWorker
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform
    Signal.trap("TERM") {}
    TestOut.append("trap.log", {jid: jid})
  end
end
