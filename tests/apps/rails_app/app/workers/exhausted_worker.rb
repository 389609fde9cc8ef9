# frozen_string_literal: true

# retry: 0 -- the first failure exhausts the retries at once; dead: false
# keeps it out of the dead set, and the exhausted hook records it.
class ExhaustedWorker
  include Sidekiq::Worker
  sidekiq_options retry: 0, dead: false

  sidekiq_retries_exhausted do |job, ex|
    TestOut.append("exhausted.log", {jid: job["jid"], class: job["class"],
                                     error_class: job["error_class"], ex: ex.class.name,
                                     message: ex.message})
  end

  def perform(tag)
    raise IOError, "gave up: #{tag}"
  end
end
