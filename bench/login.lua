-- POST /users/login/ for one account (each request verifies one argon2id hash).
--   wrk ... -s bench/login.lua URL -- USERNAME PASSWORD
-- done() prints "STATUS <code> <count>" and one "SAMPLE <code> <body>" per
-- non-2xx status for bench/run.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	counts, samples = {}, {}
	wrk.method = "POST"
	wrk.path = "/users/login/"
	wrk.headers["Content-Type"] = "application/json"
	wrk.body = string.format('{"username":"%s","password":"%s"}', args[1], args[2])
end

function response(status, headers, body)
	counts[status] = (counts[status] or 0) + 1
	if status >= 300 and samples[status] == nil then
		samples[status] = body
	end
end

function done(summary, latency, requests)
	local total, sample = {}, {}
	for _, t in ipairs(threads) do
		for code, n in pairs(t:get("counts")) do
			total[code] = (total[code] or 0) + n
		end
		for code, body in pairs(t:get("samples")) do
			sample[code] = body
		end
	end
	for code, n in pairs(total) do
		io.write(string.format("STATUS %d %d\n", code, n))
	end
	for code, body in pairs(sample) do
		io.write(string.format("SAMPLE %d %s\n", code, (body:gsub("[\r\n]", " "))))
	end
end
