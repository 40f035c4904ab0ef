# A Sidekiq app with one job that runs until the test lets it end, for dynopilot's busy-dyno tests.
#   as a worker dyno:  DYNO=worker.2 REDIS_URL=… sidekiq -r ./busy_sidekiq.rb -q two -c 1
#   to enqueue a job:  REDIS_URL=… ruby busy_sidekiq.rb QUEUE KEY   (the job ends once the Redis key KEY exists)
require "sidekiq"

Sidekiq.configure_server { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.configure_client { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }

class HoldJob
  include Sidekiq::Worker

  def perform(key)
    deadline = Time.now + 180
    sleep 0.2 until Sidekiq.redis { |c| c.get(key) } || Time.now > deadline
  end
end

if $PROGRAM_NAME == __FILE__
  queue, key = ARGV
  Sidekiq::Client.push("class" => HoldJob, "queue" => queue, "args" => [key])
end
