-- The hscode command (avalara.cli, avalara.cli.* and bin/hscode), over the
-- avalara-hscode library rock of the same version. Its own dependencies:
-- argparse (arguments), luv (signals, file checks), luasocket (the loopback
-- redirect of `hscode connect`), luasql-sqlite3 (its token cache, connections
-- and batch journals). `make dist` builds the source rock.
rockspec_format = "3.0"
package = "avalara-hscode-cli"
version = "0.1.0-1"
source = {
   url = "https://example.invalid/avalara-hscode/avalara-hscode-0.1.0.tar.gz",
   dir = "avalara-hscode-0.1.0",
}
description = {
   summary = "hscode: Avalara HS code classification from the command line",
   detailed = [[
Classify items, run batches of a catalog with a journal that resumes, look up
HS codes, run the AvaTax Items flow and connect partner accounts, from the
shell, on the avalara-hscode library.]],
   license = "MIT",
   labels = { "avalara", "hscode", "cli" },
}
dependencies = {
   "lua >= 5.1",
   "avalara-hscode == 0.1.0",
   "argparse",
   "luv",
   "luasocket",
   "luasql-sqlite3",
}
build = {
   type = "make",
   build_pass = false,
   install_target = "install-cli",
   install_variables = {
      LUA = "$(LUA)",
      INSTALL_LMOD = "$(LUADIR)",
      INSTALL_BIN = "$(BINDIR)",
   },
}
