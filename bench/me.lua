-- GET /users/me/ with one token (bench/run passes it: wrk ... -s bench/me.lua URL -- TOKEN).
-- No response() callback on purpose: it would cost wrk CPU that the nginx-ref
-- run does not pay. wrk's own "Non-2xx or 3xx responses" line counts failures.
function init(args)
	wrk.method = "GET"
	wrk.path = "/users/me/"
	wrk.headers["Authorization"] = "Token " .. args[1]
end
