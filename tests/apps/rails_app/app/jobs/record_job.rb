# frozen_string_literal: true

# An ActiveJob run through Sidekiq's JobWrapper. mode "flaky" fails its
# first execution (retry_on re-enqueues it), "discard" is dropped by
# discard_on, anything else writes a Record at once.
class RecordJob < ApplicationJob
  class Flaky < StandardError; end
  class Unwanted < StandardError; end

  queue_as :default
  retry_on Flaky, wait: 0, attempts: 3
  discard_on(Unwanted) do |job, error|
    TestOut.append("discarded.log", {job_id: job.job_id, error_class: error.class.name,
                                     message: error.message})
  end

  def perform(name, mode = "ok")
    raise Flaky, "first try of #{name}" if mode == "flaky" && executions < 2
    raise Unwanted, "not wanted: #{name}" if mode == "discard"

    Record.write!(name, job_id: job_id, provider_job_id: provider_job_id,
                        executions: executions, executor: Rails.application.executor.active?)
  end
end
