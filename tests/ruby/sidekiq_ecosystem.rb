#!/usr/bin/env ruby
# frozen_string_literal: true

# sidekiq_ecosystem.rb -- read what forq writes the way Sidekiq's readers do,
# and print it as one JSON document. Sidekiq 6.4.1 (Debian) is driven for
# real; 7.x and 8.x cannot run here (Ruby 3.1, their gems are not packaged),
# so their readers' expressions are evaluated verbatim on the same data:
# each is copied from the named file and tag of github.com/sidekiq/sidekiq.
# Used by tests/integration/test_sidekiq_ecosystem.py.
#
# Usage: REDIS_URL=redis://127.0.0.1:PORT/0 ruby sidekiq_ecosystem.rb COMMAND [JSON]
#   processes      per process: 6.4.1's API, 7.3.9's and 8.0.9's Process
#                  readers (queues, weights, the Busy page's queue column)
#   work           6.4.1's Sidekiq::Workers (reads <identity>:workers) and
#                  7.x/8.x's WorkSet#each (reads <identity>:work), with the
#                  busy counts Sidekiq's Busy page sums
#   web [PATH...]  GET each path on 6.4.1's Sidekiq::Web through Rack::Test:
#                  {"PATH": {"status": N, "body": "..."}}
#   metrics {"classes": [...], "minutes": N}
#                  7.3.9's and 8.0.9's Metrics::Query (minutely, and 8.x's
#                  ten-minute rollup) summed over the last N minutes, and the
#                  histograms both read, summed per bucket

require "json"
require "time"
require "sidekiq"
require "sidekiq/api"

abort "REDIS_URL is not set" if ENV["REDIS_URL"].to_s.empty?

# lib/sidekiq/web/helpers.rb v7.3.9 #busy_weights
def busy_weights_v7(capsule_weights)
  cw = [capsule_weights].flatten
  cw.map { |hash|
    hash.map { |name, weight| (weight > 0) ? +name << ": " << weight.to_s : name }.join(", ")
  }.join("; ")
end

# lib/sidekiq/api.rb v8.0.9 Process#queues and #weights (no fallback: 8.0.9
# raises when "capsules" is missing, which is the point of checking it)
def queues_v8(pr)
  pr["capsules"].values.flat_map { |x| x["weights"].keys }.uniq
end

def weights_v8(pr)
  hash = {}
  pr["capsules"].values.each do |cap|
    cap["weights"].each_pair { |queue, weight| hash[queue] = weight }
  end
  hash
end

def processes
  Sidekiq::ProcessSet.new.map do |pr|
    # web/views/busy.erb v7.3.9 lines 73-76 and v8.0.9 line 72
    column7 = pr["weights"] ? busy_weights_v7(pr["weights"]) : pr["queues"].sort.join(", ")
    {"identity" => pr.identity, "pid" => pr["pid"], "concurrency" => pr["concurrency"], "busy" => pr["busy"],
     "version" => pr["version"], "capsules" => pr["capsules"],
     "v6_queues" => pr.queues,
     "v7_queues" => pr["queues"], "v7_weights" => pr["weights"], "v7_column" => column7,
     "v8_queues" => queues_v8(pr), "v8_weights" => weights_v8(pr),
     "v8_column" => queues_v8(pr).sort.join(", ")}
  end
end

# lib/sidekiq/api.rb v7.3.9 / v8.0.9 WorkSet#each: <identity>:work, sorted by run_at
def work_v78
  results = []
  Sidekiq.redis do |conn|
    procs = conn.sscan_each("processes").to_a.sort
    all_works = conn.pipelined { |pipeline| procs.each { |key| pipeline.hgetall("#{key}:work") } }
    procs.zip(all_works).each do |key, workers|
      workers.each_pair do |tid, json|
        results << [key, tid, Sidekiq.load_json(json)] unless json.empty?
      end
    end
  end
  results.sort_by { |(_, _, hsh)| hsh["run_at"] }.map do |key, tid, hsh|
    job = Sidekiq::JobRecord.new(hsh["payload"]) # Work#job
    {"process" => key, "thread" => tid, "queue" => hsh["queue"], "jid" => job.jid,
     "class" => job.display_class, "args" => job.display_args,
     "run_at" => Time.at(hsh["run_at"]).to_i} # Work#run_at
  end
end

def work
  ws = Sidekiq::Workers.new
  v6 = ws.map do |process_id, thread_id, w|
    job = Sidekiq::JobRecord.new(w["payload"])
    {"process" => process_id, "thread" => thread_id, "queue" => w["queue"], "jid" => job.jid,
     "class" => job.display_class, "args" => job.display_args, "run_at" => w["run_at"]}
  end
  {"v6" => v6, "v6_size" => ws.size, "v78" => work_v78,
   "busy" => Sidekiq::ProcessSet.new.map { |pr| pr["busy"] }}
end

FETCH = (0..25).flat_map { |i| ["GET", "u16", "##{i}"] }

# lib/sidekiq/metrics/query.rb v7.3.9 #top_jobs and shared.rb Histogram#fetch
def metrics_v7(conn, classes, minutes, now)
  totals = Hash.new { |h, k| h[k] = Hash.new(0) }
  hist = Hash.new { |h, k| h[k] = Array.new(26, 0) }
  time = now
  minutes.times do
    key = "j|#{time.strftime("%Y%m%d")}|#{time.hour}:#{time.min}"
    conn.hgetall(key).each do |k, v|
      kls, metric = k.split("|")
      totals[kls][metric] += v.to_i
    end
    classes.each do |klass|
      window = time.utc.strftime("%d-%H:%-M")
      conn.bitfield("#{klass}-#{window}", *FETCH).each_with_index { |c, i| hist[klass][i] += c.to_i }
    end
    time -= 60
  end
  [totals, hist]
end

# lib/sidekiq/metrics/query.rb v8.0.9 ROLLUPS, #top_jobs, shared.rb Histogram#fetch
ROLLUPS = {
  minutely: [60, ->(time) { time.strftime("j|%y%m%d|%-H:%M") }],
  hourly: [600, ->(time) {
    m = time.min
    mins = (m < 10) ? "0" : m.to_s[0]
    time.strftime("j|%y%m%d|%-H:#{mins}")
  }]
}.freeze

def metrics_v8(conn, classes, count, granularity, now)
  totals = Hash.new { |h, k| h[k] = Hash.new(0) }
  hist = Hash.new { |h, k| h[k] = Array.new(26, 0) }
  stride, keyproc = ROLLUPS[granularity]
  time = now
  count.times do
    conn.hgetall(keyproc.call(time)).each do |k, v|
      kls, metric = k.split("|")
      totals[kls][metric] += v.to_i
    end
    if granularity == :minutely
      classes.each do |klass|
        window = time.utc.strftime("%-d-%-H:%-M")
        conn.bitfield("h|#{klass}-#{window}", *FETCH).each_with_index { |c, i| hist[klass][i] += c.to_i }
      end
    end
    time -= stride
  end
  [totals, hist]
end

def metrics(arg)
  classes, minutes = arg.fetch("classes"), arg.fetch("minutes")
  now = Time.now.utc
  Sidekiq.redis do |conn|
    t7, h7 = metrics_v7(conn, classes, minutes, now)
    t8, h8 = metrics_v8(conn, classes, minutes, :minutely, now)
    t8h, = metrics_v8(conn, classes, (minutes / 10) + 2, :hourly, now)
    {"v7" => t7, "v7_hist" => h7, "v8" => t8, "v8_hist" => h8, "v8_rollup" => t8h,
     "keys" => {"v7" => now.strftime("j|%Y%m%d|%-H:%-M"), "v8" => now.strftime("j|%y%m%d|%-H:%M"),
                "v8_rollup" => now.strftime("j|%y%m%d|%-H:%M")[0..-2]}}
  end
end

cmd = ARGV[0] or abort "usage: sidekiq_ecosystem.rb COMMAND [JSON]"
arg = ARGV[1] && JSON.parse(ARGV[1], quirks_mode: true)

begin
  out = case cmd
  when "processes" then processes
  when "work" then work
  when "metrics" then metrics(arg)
  when "web"
    require "sidekiq/web"
    require "rack/test"
    require "rack/session/cookie"
    app = Sidekiq::Web.new
    app.use(Rack::Session::Cookie, secret: "x" * 64)
    browser = Rack::Test::Session.new(Rack::MockSession.new(app))
    Array(arg).to_h do |path|
      browser.get(path)
      [path, {"status" => browser.last_response.status, "body" => browser.last_response.body}]
    end
  else
    abort "unknown command #{cmd}"
  end
  puts JSON.generate(out)
rescue Exception => e # rubocop:disable Lint/RescueException
  puts JSON.generate({"error" => "#{e.class}: #{e.message}", "at" => e.backtrace&.first(5)})
  exit 1
end
