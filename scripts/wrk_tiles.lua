-- wrk script of scripts/tilebench_memory.sh: requests the tile paths listed
-- in the file named by $PATHS (one a line, from `gridmap bench tiles
-- --write-paths`) in turn, from a random start per thread, asking for gzip
-- as browsers do.
local paths = {}
local i = 0
function init(args)
  for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
  if #paths == 0 then error("no paths in " .. os.getenv("PATHS")) end
  i = math.random(#paths)
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip"})
end
