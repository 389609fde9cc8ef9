# frozen_string_literal: true

# A Ruby daemon for forq's [daemon] sections: records its fencing token
# once, then ticks and checks in until it is stopped.
class TickerDaemon
  def perform(label, every)
    token = Forq.daemon_token
    TestOut.append("daemon.log", {phase: "start", label: label, token: token,
                                  token_class: token.class.name, node: ENV["FORQ_TEST_NODE"]})
    loop do
      Forq.checkin
      TestOut.append("daemon.log", {phase: "tick", token: token, at: Time.now.to_f})
      sleep(every)
    end
  ensure
    TestOut.append("daemon.log", {phase: "end", token: token, at: Time.now.to_f})
  end
end
