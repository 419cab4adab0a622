-- Signed Stripe deliveries for wrk, each a new event: bench/ingest.py pre-signs a pool
-- (wrk's Lua has no HMAC) into the file named by BENCH_POOL:
--   line 1: the body up to the event id;  line 2: the body after it;
--   then one line per delivery: "<event id> <Stripe-Signature header>".
-- wrk runs one Lua state per thread: setup() numbers the threads and each takes a
-- disjoint slice of the pool (every BENCH_THREADS-th line), read in order.
-- done() prints one JSON line, "BENCH_JSON {...}", that bench/ingest.py reads.

local counter = 0
local threads = {}

function setup(thread)
   thread:set("index", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

local prefix, suffix
local ids, signatures = {}, {}
local next_item = 1
ok, other, wrapped = 0, 0, 0 -- globals: done() reads them with thread:get()

function init(args)
   local step = tonumber(os.getenv("BENCH_THREADS"))
   local file = assert(io.open(os.getenv("BENCH_POOL"), "r"))
   prefix, suffix = file:read("*l"), file:read("*l")
   local n = 0
   for line in file:lines() do
      if n % step == index then
         local space = line:find(" ", 1, true)
         ids[#ids + 1] = line:sub(1, space - 1)
         signatures[#signatures + 1] = line:sub(space + 1)
      end
      n = n + 1
   end
   file:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   if next_item > #ids then
      next_item, wrapped = 1, wrapped + 1
   end
   local i = next_item
   next_item = next_item + 1
   wrk.headers["Stripe-Signature"] = signatures[i]
   return wrk.format(nil, nil, nil, prefix .. ids[i] .. suffix)
end

function response(status, headers, body)
   if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
   local ok_total, other_total, wraps = 0, 0, 0
   for _, thread in ipairs(threads) do
      ok_total = ok_total + thread:get("ok")
      other_total = other_total + thread:get("other")
      wraps = wraps + thread:get("wrapped")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "ok": %d, "non_2xx": %d, ' ..
      '"socket_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "wrapped": %d}\n',
      summary.requests, summary.duration, ok_total, other_total,
      e.connect + e.read + e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), wraps))
end
