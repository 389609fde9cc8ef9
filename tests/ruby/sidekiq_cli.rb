#!/usr/bin/env ruby
# frozen_string_literal: true

# sidekiq_cli.rb -- drive the real Sidekiq 6.4 client, API and Web UI against
# REDIS_URL and print the result as one JSON document on stdout. Used by
# tests/integration/test_sidekiq_compat.py to check forq's wire compatibility.
#
# Usage: REDIS_URL=redis://127.0.0.1:PORT/0 ruby sidekiq_cli.rb COMMAND [JSON]
#
# Commands (JSON is the one argument, where one is taken):
#   push ITEM|[ITEM...]  Sidekiq::Client.push each item (an "at" key schedules it).
#                        Prints [{"jid","raw","score"}...]: "raw" is the exact
#                        string the client stored (queue element or zset member).
#   stats                Sidekiq::Stats, queue sizes and set sizes.
#   retries|dead|scheduled   Entries of RetrySet/DeadSet/ScheduledSet:
#                        [{"jid","score","key","item","value"}...].
#   queue NAME           Raw elements of queue:NAME, as Sidekiq::Queue sees them.
#   processes            Sidekiq::ProcessSet (runs its cleanup, like the UI).
#   workers              Sidekiq::Workers: [{"process","thread","queue","jid","class","run_at"}...].
#   retry_entry {"set":"retry"|"dead","jid":J}   SortedEntry#retry ("Retry Now").
#   add_to_queue {"set":...,"jid":J}             SortedEntry#add_to_queue (no decrement).
#   quiet ID | stop ID   Sidekiq::Process#quiet! / #stop! for the process ID.
#   web [PATH...]        GET each path on Sidekiq::Web behind Rack::Session::Cookie:
#                        {"PATH": {"status": N, "body": "..."}}.
#   ttl KEY              Redis TTL of KEY.
#   multi [[CMD, ARG]...] several commands in one run: an array of results.
#
# SIDEKIQ_NAMESPACE set: the client uses Sidekiq's namespace: option.
#
# Exit status 0 on success; an exception prints {"error": ...} and exits 1.

require "json"
require "sidekiq"
require "sidekiq/api"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

abort "REDIS_URL is not set" if ENV["REDIS_URL"].to_s.empty?

def set_for(name)
  case name
  when "retry" then Sidekiq::RetrySet.new
  when "dead" then Sidekiq::DeadSet.new
  when "schedule", "scheduled" then Sidekiq::ScheduledSet.new
  else raise ArgumentError, "unknown set #{name.inspect}"
  end
end

def entries(set)
  set.map do |e|
    # "key" is what the Web UI puts in its links: "<score>-<jid>".
    {"jid" => e.jid, "score" => e.score, "key" => "#{e.score}-#{e.jid}",
     "item" => e.item, "value" => e.value}
  end
end

def find_entry(arg)
  set = set_for(arg.fetch("set"))
  entry = set.find_job(arg.fetch("jid"))
  raise "no #{arg["set"]} entry for jid #{arg["jid"]}" unless entry
  entry
end

def stored_raw(jid, queue, scheduled)
  if scheduled
    e = Sidekiq::ScheduledSet.new.find_job(jid)
    e && [e.value, e.score]
  else
    e = Sidekiq::Queue.new(queue).find_job(jid)
    e && [e.value, nil]
  end
end

# SIDEKIQ_NAMESPACE: Sidekiq's `redis: { namespace: }` (redis-namespace), as an
# app that used one configures it.
unless ENV["SIDEKIQ_NAMESPACE"].to_s.empty?
  Sidekiq.configure_client do |config|
    config.redis = {url: ENV["REDIS_URL"], namespace: ENV["SIDEKIQ_NAMESPACE"]}
  end
end

cmd = ARGV[0] or abort "usage: sidekiq_cli.rb COMMAND [JSON]"
arg = ARGV[1] && JSON.parse(ARGV[1], quirks_mode: true)

def run(cmd, arg)
  case cmd
  when "multi" # [[COMMAND, JSON-ARG]...] in one Ruby start: an array of results
    arg.map { |c, a| run(c, a) }
  when "push"
    items = arg.is_a?(Array) ? arg : [arg]
    items.map do |item|
      jid = Sidekiq::Client.push(item)
      raw, score = stored_raw(jid, item.fetch("queue", "default"), item.key?("at"))
      {"jid" => jid, "raw" => raw, "score" => score}
    end
  when "stats"
    s = Sidekiq::Stats.new
    {"processed" => s.processed, "failed" => s.failed, "enqueued" => s.enqueued,
     "scheduled_size" => s.scheduled_size, "retry_size" => s.retry_size,
     "dead_size" => s.dead_size, "processes_size" => s.processes_size,
     "workers_size" => s.workers_size,
     "queues" => Sidekiq::Queue.all.map { |q| [q.name, q.size] }.to_h}
  when "retries" then entries(Sidekiq::RetrySet.new)
  when "dead" then entries(Sidekiq::DeadSet.new)
  when "scheduled" then entries(Sidekiq::ScheduledSet.new)
  when "queue" then Sidekiq::Queue.new(arg).map(&:value)
  when "processes"
    ps = Sidekiq::ProcessSet.new
    list = ps.map do |pr|
      {"identity" => pr.identity, "hostname" => pr["hostname"], "pid" => pr["pid"],
       "tag" => pr.tag, "labels" => pr.labels, "queues" => pr.queues,
       "concurrency" => pr["concurrency"], "busy" => pr["busy"], "beat" => pr["beat"],
       "started_at" => pr["started_at"], "quiet" => pr["quiet"], "stopping" => pr.stopping?,
       "rss" => pr["rss"]}
    end
    {"size" => ps.size, "total_concurrency" => ps.total_concurrency, "list" => list}
  when "workers"
    ws = Sidekiq::Workers.new
    list = ws.map do |process_id, thread_id, work|
      job = Sidekiq::JobRecord.new(work["payload"])
      {"process" => process_id, "thread" => thread_id, "queue" => work["queue"],
       "jid" => job.jid, "class" => job.display_class, "run_at" => work["run_at"]}
    end
    {"size" => ws.size, "list" => list}
  when "retry_entry"
    find_entry(arg).retry
    true
  when "add_to_queue"
    find_entry(arg).add_to_queue
    true
  when "quiet", "stop"
    pr = Sidekiq::ProcessSet.new.find { |p| p.identity == arg }
    raise "no process #{arg}" unless pr
    cmd == "quiet" ? pr.quiet! : pr.stop!
    true
  when "web"
    require "sidekiq/web"
    require "rack/mock"
    require "rack/session/cookie"
    app = Sidekiq::Web.new
    app.use(Rack::Session::Cookie, secret: "x" * 64)
    req = Rack::MockRequest.new(app)
    Array(arg).to_h do |path|
      res = req.get(path)
      [path, {"status" => res.status, "body" => res.body}]
    end
  when "ttl"
    Sidekiq.redis { |r| r.ttl(arg) }
  else
    abort "unknown command #{cmd}"
  end
end

begin
  puts JSON.generate(run(cmd, arg))
rescue Exception => e # rubocop:disable Lint/RescueException
  puts JSON.generate({"error" => "#{e.class}: #{e.message}", "at" => e.backtrace&.first(5)})
  exit 1
end
