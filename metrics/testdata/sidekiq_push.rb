# Pushes jobs with the real Sidekiq client, exactly as an app does, with Ruby's clock moved back so that the jobs
# look as old as the test needs. Usage: ruby sidekiq_push.rb REDIS_URL QUEUE:COUNT:SECONDS_AGO ...
require "sidekiq"

module MovedClock
  def now(*args, **kwargs)
    super - ($seconds_ago || 0)
  end
end
Time.singleton_class.prepend(MovedClock)

Sidekiq.configure_client { |config| config.redis = { url: ARGV[0] } }
ARGV[1..].each do |spec|
  queue, count, seconds_ago = spec.split(":")
  $seconds_ago = Float(seconds_ago)
  Integer(count).times { |i| Sidekiq::Client.push("class" => "HardJob", "queue" => queue, "args" => [i]) }
end
