# frozen_string_literal: true

# forq.rb - the Ruby half of forq's Ruby plugin (ruby.c embeds this file).
# It loads the app as `sidekiq -r` does and runs one job the way Sidekiq
# 6.4's Processor#process and JobRetry do: middleware, reloader, retry
# decision, error and death handlers, lifecycle events. It never writes a
# job's outcome to Redis itself: it returns the decision and forq's worker
# writes it atomically with the job's removal from its working list.
#
# Forq.log, Forq.checkin and Forq.daemon_token are defined by ruby.c.

require "json"

module Forq
  # forq_disposition (include/forq.h)
  DISPOSE_RETRY = 1
  DISPOSE_DEAD = 2
  DISPOSE_DISCARD = 3

  # Signals forq's worker loop owns; a job's trap must not take them.
  OWNED_SIGNALS = %w[TERM INT QUIT HUP USR1 USR2 TTIN TSTP].freeze
  DEFAULT_MAX_RETRIES = 25
  ERROR_MESSAGE_MAX = 10_000

  # Installed in workers only: a Signal.trap on a signal forq owns is ignored
  # with a warning, so TERM keeps stopping the worker gracefully.
  module TrapGuard
    def trap(sig, *rest, &block)
      name = Forq.signal_name(sig)
      if Forq.guard_signals? && OWNED_SIGNALS.include?(name)
        Forq.log(2, "Signal.trap(#{name}) ignored: forq owns SIG#{name} in its workers")
        return "DEFAULT"
      end
      super
    end
  end

  class << self
    attr_reader :worker_index

    def sidekiq?
      defined?(::Sidekiq::VERSION) ? true : false
    end

    def guard_signals?
      @guard_signals ? true : false
    end

    def signal_name(sig)
      name = sig.is_a?(Integer) ? Signal.signame(sig).to_s : sig.to_s
      name = name.sub(/\ASIG/, "")
      name
    rescue ArgumentError
      sig.to_s
    end

    # --- loading the app (master with --prefork, else each worker) ---------

    def boot(scripts, redis_url, environment, namespace = nil)
      unless ENV["REDIS_PROVIDER"] && ENV[ENV["REDIS_PROVIDER"]]
        ENV["REDIS_URL"] ||= redis_url unless redis_url.empty?
      end
      load_sidekiq
      use_namespace(namespace) if namespace
      if defined?(::Sidekiq::CLI) && ::Sidekiq::CLI.respond_to?(:instance)
        ::Sidekiq::CLI.instance.environment = environment || ENV["RAILS_ENV"] || ENV["RACK_ENV"]
      end
      scripts.each { |path| load_app(path) }
      ::Sidekiq.options[:concurrency] = 1 if sidekiq?
      guard_traps
      true
    end

    # Installed once, where the app was loaded (the master with --prefork):
    # prepending to Kernel invalidates every class's method caches, which
    # done after fork would make each worker rewrite memory it could share.
    # The guard acts only once after_fork turned it on in a worker.
    def guard_traps
      Signal.singleton_class.prepend(TrapGuard)
      Kernel.prepend(TrapGuard)
      Kernel.singleton_class.prepend(TrapGuard)
    end

    # forq's `namespace =`: the app's own Sidekiq client (jobs pushing
    # jobs) writes where forq reads, through redis-namespace as Sidekiq's
    # `redis: { namespace: }` does. Set before the app loads, so an app
    # that configures its own Redis still decides for itself.
    def use_namespace(namespace)
      return unless sidekiq?
      ::Sidekiq.configure_server { |config| config.redis = { namespace: namespace } }
      ::Sidekiq.configure_client { |config| config.redis = { namespace: namespace } }
    end

    # Sidekiq::CLI is what makes Sidekiq.server? true, so the app's
    # configure_server blocks run; requiring it starts nothing.
    def load_sidekiq
      require "sidekiq"
      require "sidekiq/cli"
    rescue LoadError
      nil
    end

    # A directory is a Rails root, loaded as Sidekiq::CLI#boot_application
    # does; anything else is required.
    def load_app(path)
      full = File.expand_path(path)
      if File.directory?(full)
        env = File.join(full, "config", "environment.rb")
        raise LoadError, "#{path}: a directory given with -r must be a Rails root " \
                         "(no config/environment.rb)" unless File.file?(env)
        require "rails"
        require "sidekiq/rails" if sidekiq?
        require env
      else
        raise LoadError, "#{path}: no such file" unless File.file?(full)
        require full
      end
    end

    # --- fork -------------------------------------------------------------

    # In the master, once, before the first fork: no Redis connection of
    # the master's may be shared with a child, and a collected, compacted
    # heap is what the workers share copy-on-write.
    def before_fork
      drop_sidekiq_pool
      4.times { GC.start(full_mark: true, immediate_sweep: true) }
      GC.compact if GC.respond_to?(:compact) && ENV["FORQ_RUBY_COMPACT"] != "0"
      GC.start
      true
    end

    def drop_sidekiq_pool
      return unless sidekiq? && ::Sidekiq.instance_variable_defined?(:@redis)
      pool = ::Sidekiq.instance_variable_get(:@redis)
      ::Sidekiq.instance_variable_set(:@redis, nil)
      pool&.shutdown { |conn| conn.close rescue nil }
    rescue StandardError
      nil
    end

    # In every child. A worker (FORQ_WORKER_INDEX is set) guards forq's
    # signals and fires :startup as each Sidekiq process does.
    def after_fork(worker)
      drop_sidekiq_pool if @booted_in_master
      unless worker
        # A daemon: TERM raises SignalException, so its ensure blocks run.
        Signal.trap("TERM", "DEFAULT")
        return true
      end
      @worker_index = ENV["FORQ_WORKER_INDEX"].to_i
      @guard_signals = true
      fire_event(:startup, reverse: false, reraise: true)
      true
    end

    def booted_in_master!
      @booted_in_master = true
    end

    def quiet
      fire_event(:quiet, reverse: true)
    end

    def shutdown
      fire_event(:shutdown, reverse: true)
    ensure
      flush_stdio
    end

    # forq runs no Ruby at_exit in its children: flush what Ruby buffered.
    def flush_stdio
      $stdout.flush rescue nil
      $stderr.flush rescue nil
    end

    # Sidekiq::Util#fire_event: each block once, errors to the handlers.
    def fire_event(event, reverse: false, reraise: false)
      return unless sidekiq?
      arr = ::Sidekiq.options[:lifecycle_events][event]
      return unless arr
      arr.reverse! if reverse
      arr.each do |block|
        block.call
      rescue => e
        handle_exception(e, {context: "Exception during Sidekiq lifecycle event.", event: event})
        raise e if reraise
      end
      arr.clear
    end

    # --- running a job ------------------------------------------------------

    # nil on success; else [error_class, error_message, disposition,
    # retry_in, error_backtrace JSON or nil].
    def perform(jobstr, queue)
      job = JSON.parse(jobstr)
      worker = nil
      prepare(job) do
        reloader.call do
          worker = constantize(job["class"]).new
          worker.jid = job["jid"] if worker.respond_to?(:jid=)
          invoke(worker, job, queue)
        end
      end
      nil
    rescue Exception => e # as Sidekiq: every exception is the job's failure
      failed(e, worker, job, jobstr, queue)
    end

    def prepare(job, &block)
      if sidekiq? && defined?(::Sidekiq::JobLogger)
        (@job_logger ||= ::Sidekiq::JobLogger.new).prepare(job, &block)
      else
        yield
      end
    end

    def reloader
      return ::Sidekiq.options[:reloader] if sidekiq? && ::Sidekiq.options[:reloader]
      return ::Rails.application.reloader.method(:wrap) if defined?(::Rails.application) &&
                                                           ::Rails.application
      proc { |&block| block.call }
    end

    def invoke(worker, job, queue)
      args = job["args"] || []
      if sidekiq?
        ::Sidekiq.server_middleware.invoke(worker, job, queue) { worker.perform(*args) }
      else
        worker.perform(*args)
      end
    end

    # Processor#constantize: namespaced names resolve under their namespace.
    def constantize(str)
      raise NameError, "job has no class" unless str.is_a?(String) && !str.empty?
      return Object.const_get(str) unless str.include?("::")
      names = str.split("::")
      names.shift if names.empty? || names.first.empty?
      names.inject(Object) { |constant, name| constant.const_get(name, false) }
    end

    # JobRetry#local and #global, then Processor's handle_exception.
    def failed(exc, worker, job, jobstr, queue)
      job ||= {}
      msg = safe_json(jobstr) || {}
      if worker && msg["retry"].nil? && worker.class.respond_to?(:get_sidekiq_options)
        msg["retry"] = worker.class.get_sidekiq_options["retry"]
      end
      # Sidekiq drops a job whose class could not even be made when its
      # payload has no "retry"; forq keeps it to forq's default rules.
      msg["retry"] = true if worker.nil? && msg["retry"].nil?
      result = decide(exc, worker, msg, queue)
      handle_exception(exc, {context: "Job raised exception", job: job, jobstr: jobstr})
      result
    end

    def decide(exc, worker, msg, queue)
      message = exception_message(exc)
      klass = exc.class.name || exc.class.to_s
      unless msg["retry"]
        death_handlers(msg, exc)
        return [klass, message, DISPOSE_DISCARD, 0, nil]
      end
      max = msg["retry"].is_a?(Integer) ? msg["retry"] : max_retries
      count = msg["retry_count"].is_a?(Integer) ? msg["retry_count"] + 1 : 0
      backtrace = backtrace_json(msg, exc)
      if count < max
        return [klass, message, DISPOSE_RETRY, delay_for(worker, count, exc), backtrace]
      end
      msg.merge!("queue" => msg["retry_queue"] || queue, "error_message" => message,
                 "error_class" => klass, "retry_count" => count)
      retries_exhausted(worker, msg, exc)
      [klass, message, msg["dead"] == false ? DISPOSE_DISCARD : DISPOSE_DEAD, 0, backtrace]
    end

    def max_retries
      (sidekiq? && ::Sidekiq.options[:max_retries]) || DEFAULT_MAX_RETRIES
    end

    def delay_for(worker, count, exc)
      jitter = rand(10) * (count + 1)
      if worker.respond_to?(:sidekiq_retry_in_block) && worker.sidekiq_retry_in_block
        custom = retry_in(worker, count, exc).to_i
        return custom + jitter if custom > 0
      end
      (count**4) + 15 + jitter
    end

    def retry_in(worker, count, exc)
      worker.sidekiq_retry_in_block.call(count, exc)
    rescue Exception => e
      handle_exception(e, {context: "Failure scheduling retry using the defined " \
                                    "`sidekiq_retry_in` in #{worker.class.name}, falling back to default"})
      nil
    end

    def retries_exhausted(worker, msg, exc)
      begin
        block = worker.respond_to?(:sidekiq_retries_exhausted_block) &&
                worker.sidekiq_retries_exhausted_block
        block&.call(msg, exc)
      rescue => e
        handle_exception(e, {context: "Error calling retries_exhausted", job: msg})
      end
      death_handlers(msg, exc)
    end

    def death_handlers(msg, exc)
      return unless sidekiq?
      ::Sidekiq.death_handlers.each do |handler|
        handler.call(msg, exc)
      rescue => e
        handle_exception(e, {context: "Error calling death handler", job: msg})
      end
    end

    # Sidekiq 6.4 stores error_backtrace as base64 of zlib of the JSON lines.
    def backtrace_json(msg, exc)
      return nil unless msg["backtrace"]
      lines = exc.backtrace || []
      lines = lines[0...msg["backtrace"].to_i] unless msg["backtrace"] == true
      require "zlib"
      require "base64"
      JSON.generate(Base64.encode64(Zlib::Deflate.deflate(JSON.generate(lines))))
    end

    def exception_message(exc)
      m = exc.message.to_s[0, ERROR_MESSAGE_MAX]
      m = +m
      m.force_encoding("utf-8")
      m.scrub!
      m
    rescue Exception
      +"!!! ERROR MESSAGE THREW AN ERROR !!!"
    end

    def handle_exception(exc, ctx)
      if sidekiq?
        ::Sidekiq.error_handlers.each do |handler|
          handler.call(exc, ctx)
        rescue => e
          Forq.log(3, "error handler raised #{e.class}: #{e.message}")
        end
      else
        Forq.log(3, "#{ctx[:context]}: #{exc.class}: #{exc.message}")
      end
    end

    def safe_json(str)
      JSON.parse(str)
    rescue StandardError
      nil
    end

    # --- daemons ------------------------------------------------------------

    # [daemon "name"] ruby = Class, args = [...]: runs until perform returns.
    # forq's TERM (a stop, a lost lease) ends it cleanly.
    def run_daemon(class_name, args_json)
      constantize(class_name).new.perform(*JSON.parse(args_json))
      0
    rescue SignalException => e
      raise unless e.signo == Signal.list["TERM"]
      Forq.log(1, "daemon stopped by SIGTERM")
      0
    end

    # "Class: message" and the backtrace, for a failure outside any job.
    def describe(exc)
      lines = ["#{exc.class}: #{exc.message}"]
      app = (exc.backtrace || []).reject { |l| l.start_with?("forq/plugins/ruby/") }
      app.first(40).each { |l| lines << "    from #{l}" }
      lines
    rescue Exception
      ["#{exc.class}"]
    end
  end
end
