-- POST /users/register/ with a new username and email on every request:
-- "<prefix><thread id>x<counter>", unique within a run; the prefix (random per
-- run, from bench/run) keeps them unique across runs on one database too.
--   wrk ... -s bench/register.lua URL -- PREFIX PASSWORD
-- done() prints "STATUS <code> <count>" and one "SAMPLE <code> <body>" per
-- non-2xx status for bench/run.
local threads = {}

function setup(thread)
	thread:set("id", #threads + 1)
	table.insert(threads, thread)
end

function init(args)
	counts, samples, counter = {}, {}, 0
	prefix, password = args[1], args[2]
end

function request()
	counter = counter + 1
	local name = string.format("%s%dx%d", prefix, id, counter)
	local body = string.format('{"username":"%s","email":"%s@example.com","password":"%s"}',
		name, name, password)
	return wrk.format("POST", "/users/register/", { ["Content-Type"] = "application/json" }, body)
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
