# Rack::Session::Redis (redis-rack, redis-store, ruby-redis from Debian) against sessiond:
# create, read, refresh, expire and destroy a session through a Rack app, checking the
# data in sessiond. Run by compat/stack.py:  ruby sessions.rb PORT
require 'json'
require 'rack'
require 'rack/session/redis'
require 'redis'

PORT = Integer(ARGV.fetch(0))
DEADLINE = 20.0

APP = lambda do |env|
  req = Rack::Request.new(env)
  s = env['rack.session']
  case req.path_info
  when '/create' then s['user'] = 'alice'; s['n'] = 1
  when '/incr' then s['n'] = (s['n'] || 0) + 1
  when '/destroy' then env['rack.session.options'][:drop] = true
  end
  [200, { 'content-type' => 'application/json' }, [JSON.dump(s.to_hash)]]
end

def stack(expire)
  Rack::MockRequest.new(Rack::Session::Redis.new(
    APP, redis_server: "redis://127.0.0.1:#{PORT}/0/rack:session", expire_after: expire
  ))
end

# One request; retried (as a browser would) while the cluster fails over.
def request(mock, path, cookie, expect)
  ends = Process.clock_gettime(Process::CLOCK_MONOTONIC) + DEADLINE
  loop do
    begin
      res = mock.get(path, 'HTTP_COOKIE' => cookie.to_s)
      body = JSON.parse(res.body)
      return [res, body] if expect.nil? || expect.call(body)
      raise "unexpected session #{body}"
    rescue StandardError => e
      raise "#{path} kept failing: #{e}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > ends
      sleep 0.02
    end
  end
end

def cookie_of(res)
  res['set-cookie'].to_s.split(';').first
end

def check(name)
  yield
  puts "ok   rack-session-redis #{name}"
rescue StandardError => e
  puts "FAIL rack-session-redis #{name}: #{e}"
  exit 1
end

redis = Redis.new(port: PORT)
mock = stack(60)
cookie = nil
check('create') do
  res, = request(mock, '/create', nil, nil)
  cookie = cookie_of(res)
  keys = redis.keys('rack:session:*')
  raise "stored #{keys}" unless keys.size == 1
  raise "ttl #{redis.ttl(keys[0])}" unless (55..60).cover?(redis.ttl(keys[0]))
end
check('read') do
  request(mock, '/read', cookie, ->(b) { b['user'] == 'alice' && b['n'] == 1 })
end
puts 'KILL?'
$stdout.flush
$stdin.gets
check('refresh after a leader kill') do
  request(mock, '/incr', cookie, ->(b) { b['n'] == 2 })
  request(mock, '/read', cookie, ->(b) { b['n'] == 2 })
end
check('expire') do
  short = stack(1)
  res, = request(short, '/create', nil, nil)
  c = cookie_of(res)
  before = redis.keys('rack:session:*').size
  ends = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
  sleep 0.05 until redis.keys('rack:session:*').size < before ||
                   Process.clock_gettime(Process::CLOCK_MONOTONIC) > ends
  raise 'the short session did not expire' unless redis.keys('rack:session:*').size < before
  _, body = request(short, '/read', c, nil)
  raise "expired session still read: #{body}" unless body.empty?
end
check('destroy') do
  request(mock, '/destroy', cookie, nil)
  _, body = request(mock, '/read', cookie, nil)
  raise "destroyed session still read: #{body}" unless body.empty?
end
