#!/usr/bin/env ruby
# frozen_string_literal: true

# sidekiq_cron_cli.rb -- drive the real sidekiq-cron 1.8 (Debian's
# ruby-sidekiq-cron) against REDIS_URL and print one JSON document on stdout.
# Used by tests/integration/test_sidekiq_cron.py to check that forq's cron
# entries are what sidekiq-cron's API, Web tab and poller read.
#
# Usage: REDIS_URL=redis://127.0.0.1:PORT/0 ruby sidekiq_cron_cli.rb COMMAND [JSON]
#
# Commands:
#   all                  Sidekiq::Cron::Job.all: [{"name","cron","klass","queue",
#                        "status","last_enqueue_time" (epoch s),"args","message",
#                        "description","valid","active_job","date_as_argument",
#                        "jid_history"}...]
#   web [[METHOD, PATH]...]  Each request on Sidekiq::Web with the cron tab
#                        (require "sidekiq/cron/web") behind a cookie session,
#                        through Rack::Test; a POST carries the CSRF token the
#                        page before it rendered, as a browser's form does.
#                        Prints [{"status","body","location"}...] and "pushed".
#   enque_at {"name","time"}  Job#test_and_enque_for_time!(Time.at(time)), as the
#                        poller calls it. Prints {"pushed": [...], "tick"}: the
#                        tick it considered (fugit's previous time before it).
#   poll {"seconds","interval"}  Sidekiq::Cron::Poller#enqueue every interval
#                        seconds for that long (after the first round it says
#                        "polling" on stderr). Prints {"pushed": [...], "rounds": N}.
#   activejob JOB_DATA   ActiveJob (Debian's 6.1) deserializes a wrapper's
#                        argument for a job class of that name. Prints
#                        {"class","arguments","queue_name","job_id"}.
# "pushed" lists the jobs this process pushed (class, jid, queue, args),
# recorded by a Sidekiq client middleware.
#
# Exit status 0 on success; an exception prints {"error": ...} and exits 1.

require "json"
require "time"
require "sidekiq"
require "sidekiq/api"
require "sidekiq/cron/job"
require "sidekiq/cron/poller"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)
abort "REDIS_URL is not set" if ENV["REDIS_URL"].to_s.empty?
Sidekiq.logger.level = Logger::WARN

# Records every job this process pushes.
class PushRecorder
  PUSHED = []
  def call(_worker, job, queue, _redis)
    r = yield
    PUSHED << {"class" => job["class"], "jid" => job["jid"], "queue" => queue,
               "args" => job["args"], "wrapped" => job["wrapped"]}
    r
  end
end

Sidekiq.configure_client do |config|
  config.client_middleware { |chain| chain.add PushRecorder }
end

def job_json(j)
  msg = (JSON.parse(j.message) rescue {})
  {"name" => j.name, "cron" => j.cron, "klass" => j.klass, "queue" => msg["queue"],
   "status" => j.status, "last_enqueue_time" => j.last_enqueue_time&.to_i,
   "args" => j.args, "message" => j.message, "description" => j.description,
   "valid" => j.valid?, "errors" => j.errors, "active_job" => j.is_active_job?,
   "date_as_argument" => j.date_as_argument?, "jid_history" => j.jid_history_from_redis}
end

def web(steps)
  require "sidekiq/web"
  require "sidekiq/cron/web"
  require "rack/test"
  require "rack/session/cookie"
  app = Rack::Builder.new do
    use Rack::Session::Cookie, secret: "x" * 64
    run Sidekiq::Web.new
  end
  session = Rack::Test::Session.new(Rack::MockSession.new(app))
  token = nil
  scrape = lambda do |body|
    body[/name=["']authenticity_token["'] value=["']([^"']+)/, 1] ||
      body[/value=["']([^"']+)["'] name=["']authenticity_token/, 1]
  end
  steps.map do |method, path|
    if method == "POST"
      # the form's token, from the page a browser would have shown
      token ||= scrape.call(session.get("/cron").body)
      session.post(path, "authenticity_token" => token)
    else
      session.get(path)
    end
    res = session.last_response
    token = scrape.call(res.body)
    {"status" => res.status, "body" => res.body, "location" => res.headers["Location"]}
  end
end

cmd = ARGV[0]
arg = ARGV[1] ? JSON.parse(ARGV[1]) : nil
begin
  out =
    case cmd
    when "all"
      Sidekiq::Cron::Job.all.map { |j| job_json(j) }.sort_by { |h| h["name"] }
    when "web"
      {"responses" => web(arg)}
    when "enque_at"
      job = Sidekiq::Cron::Job.find(arg["name"])
      raise "no cron job #{arg["name"]}" unless job
      time = Time.at(arg["time"]).utc
      job.test_and_enque_for_time!(time)
      {"tick" => job.last_time(time).to_i}
    when "poll"
      poller = Sidekiq::Cron::Poller.new
      poller.enqueue
      $stderr.puts "polling"
      $stderr.flush
      deadline = Time.now + arg["seconds"]
      rounds = 0
      while Time.now < deadline
        poller.enqueue
        rounds += 1
        sleep arg["interval"]
      end
      {"rounds" => rounds}
    when "activejob"
      require "active_job"
      klass = Object.const_set(arg["job_class"], Class.new(ActiveJob::Base) { def perform(*); end })
      job = ActiveJob::Base.deserialize(arg)
      job.send(:deserialize_arguments_if_needed)
      {"class" => job.class.name, "arguments" => job.arguments, "queue_name" => job.queue_name,
       "job_id" => job.job_id, "same_class" => job.class == klass}
    else
      abort "unknown command #{cmd}"
    end
  out["pushed"] = PushRecorder::PUSHED if out.is_a?(Hash)
  puts JSON.generate(out)
rescue Exception => e # rubocop:disable Lint/RescueException
  puts JSON.generate({"error" => "#{e.class}: #{e.message}", "at" => e.backtrace&.first(5)})
  exit 1
end
