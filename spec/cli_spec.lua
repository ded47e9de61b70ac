-- spec/cli_spec.lua: lua/cloudflare/cli.lua's pure parts, in this process: the option records
-- and the --help they render, the usage line, the plan shown before a large change, and that
-- nothing is asked without a terminal. (The scripts' use of it, end to end: scripts_spec.)
local cli = require "cloudflare.cli"

describe("cloudflare.cli", function()
  local OPTIONS = cli.options("zone",
    { "region", "list", arg = "R", help = "only mappings in region R" },
    { "region-to", "string", arg = "R", required = true, help = "the new region" },
    "dry-run", "yes")

  it("parses the list form as the map form, options in any order", function()
    local opts, rest = cli.parse({ "--region", "a", "x", "--region=b", "--zone", "z1", "--yes",
      "--region-to", "c" }, OPTIONS, "u")
    assert.are.same({ region = { "a", "b" }, zone = "z1", yes = true, ["region-to"] = "c" }, opts)
    assert.are.same({ "x" }, rest)
  end)

  it("renders a usage line from the records: required without brackets, repeatable with ...", function()
    assert.are.equal(cli.name() .. " [--zone Z] [--region R ...] --region-to R [--dry-run] [--yes] FILE",
      cli.usage(OPTIONS, "FILE"))
  end)

  it("renders --help: the usage, about, operands and every option with its help", function()
    local text = cli.help("u [opts]", OPTIONS, { about = "Does a thing.", operands = { { "FILE", "the file" } } })
    local l = {}
    for line in text:gmatch("([^\n]*)\n") do l[#l + 1] = line end
    assert.are.equal("usage: u [opts]", l[1])
    assert.are.equal("Does a thing.", l[3])
    assert.matches("^  FILE%s+the file$", l[5])
    assert.matches("^  %-%-zone Z%s+the zone id %(default: the sandbox zone", l[6])
    assert.matches("^  %-%-region R%s+only mappings in region R$", l[7])
    assert.matches("^  %-%-region%-to R%s+the new region$", l[8])
    assert.matches("^  %-%-dry%-run%s+show what would change", l[9])
    assert.truthy(text:find("--yes", 1, true))
    for _, line in ipairs(l) do assert.is_true(#line <= 92, line) end
  end)

  it("shares each common option's text from one table", function()
    for _, name in ipairs { "zone", "format", "concurrency", "dry-run", "ignore-missing", "yes", "journal",
      "no-journal" } do
      local o = cli.OPTIONS[name]
      assert.are.equal(name, o[1])
      assert.is_string(o.help)
      assert.are.equal(o, cli.options(name)[1])
    end
    assert.has_error(function() cli.options("nope") end)
  end)

  it("summarises a plan per zone, vendor and region, with a few IPs", function()
    local items = {}
    for i = 1, 7 do items[i] = { origin_ip = "192.0.2." .. i, vendor = i <= 5 and "aws" or "gcp",
      region = i <= 5 and "us-east-1" or "us-central1" } end
    assert.are.equal(table.concat({
      "delete 7 mapping(s)",
      "  zones:   z1 7",
      "  vendors: aws 5, gcp 2",
      "  regions: us-east-1 5, us-central1 2",
      "  IPs:     192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 ...",
    }, "\n"), cli.plan_summary { verb = "delete", items = items, zone = "z1" })
  end)

  it("never asks with --yes, nor without a terminal (as here, stdin a pipe)", function()
    assert.is_false(cli.would_ask { n = 1000, yes = true })
    local core = require "cloudflare.core"
    if not (core.isatty(0) and core.isatty(2)) then
      assert.is_false(cli.would_ask { n = 1000 })
      assert.is_true(cli.confirm { n = 1000, summary = function() error("must not be called") end })
    end
  end)

  it("finds the default journals under $XDG_STATE_HOME, else ~/.local/state", function()
    local dir = cli.journal_dir()
    local xdg = os.getenv("XDG_STATE_HOME")
    if xdg and xdg ~= "" then
      assert.are.equal(xdg .. "/cfrun/journal", dir)
    else
      assert.are.equal(os.getenv("HOME") .. "/.local/state/cfrun/journal", dir)
    end
    assert.are.equal(false, cli.journal { ["no-journal"] = true, journal = "x" })
  end)
end)
