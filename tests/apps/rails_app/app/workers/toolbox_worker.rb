# frozen_string_literal: true

require "timeout"

# Uses what a job in a forked worker must be able to use: subprocesses
# (system, backticks), Timeout (one that fires and is rescued), and threads
# (one joined, one killed).
class ToolboxWorker
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(tag)
    out = {jid: jid, tag: tag}
    out[:system] = system("true")
    out[:system_false] = system("false")
    out[:backticks] = `echo forq`.chomp
    out[:backticks_status] = $?.exitstatus
    out[:timeout] = begin
      Timeout.timeout(0.2) { sleep 5 }
      "did not fire"
    rescue Timeout::Error => e
      e.class.name
    end
    out[:timeout_ok] = Timeout.timeout(5) { "in time" }
    out[:thread_value] = Thread.new { 6 * 7 }.value
    sleeper = Thread.new { sleep }
    sleep 0.05
    sleeper.kill
    out[:killed_joined] = !sleeper.join(5).nil?
    out[:killed_alive] = sleeper.alive?
    TestOut.append("toolbox.log", out)
  end
end
