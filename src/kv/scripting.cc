#include "kv/scripting.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include "base/assert.h"
#include "kv/commands.h"

namespace synod::kv {
namespace {

// --- SHA-1 (FIPS 180-4), for script names ---

uint32_t rotl(uint32_t x, int n) {
  return (x << n) | (x >> (32 - n));
}

void sha1_block(uint32_t h[5], const unsigned char* p) {
  uint32_t w[80];
  for (int i = 0; i < 16; ++i)
    w[i] = uint32_t{p[4 * i]} << 24 | uint32_t{p[4 * i + 1]} << 16 | uint32_t{p[4 * i + 2]} << 8 |
           uint32_t{p[4 * i + 3]};
  for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; ++i) {
    uint32_t f = 0, k = 0;
    if (i < 20) {
      f = (b & c) | (~b & d), k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ c ^ d, k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d, k = 0xCA62C1D6;
    }
    const uint32_t t = rotl(a, 5) + f + e + k + w[i];
    e = d, d = c, c = rotl(b, 30), b = a, a = t;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

// --- One run of a script ---

// Everything a run owns outside the Lua heap. Lua errors unwind with longjmp, which skips C++
// destructors: C functions called from Lua keep their C++ objects here, never on their frames.
struct Run {
  Keyspace* ks = nullptr;
  const CommandRules* rules = nullptr;  // the user's, if it may not run every command
  const std::string* body = nullptr;
  const std::vector<std::string>* keys = nullptr;
  const std::vector<std::string>* argv = nullptr;
  size_t memory_bytes = 0;
  bool limited = true;  // the memory bound holds while the script runs, not for its reply
  bool over_memory = false;
  uint64_t instructions = 0;
  bool over_instructions = false;
  uint64_t rand48 = 0;
  uint64_t next_object_id = 0;
  bool read_only = false;         // EVAL_RO, EVALSHA_RO: redis.call of a write is refused
  uint64_t now_ms = 0;            // redis.call's reads are served at this time
  int script_status = 0;          // lua_pcall's status for the script itself
  std::vector<std::string> args;  // redis.call's arguments
  Reply reply;                    // redis.call's reply
};

constexpr int kHookEvery = 1000;   // instructions between two calls of the count hook
constexpr int kMaxReplyDepth = 4;  // what encode_reply/decode_reply keep (sessions, the peer wire)
constexpr uint64_t kRand48Mask = (uint64_t{1} << 48) - 1;
constexpr int32_t kRand48Max = std::numeric_limits<int32_t>::max();
const char kRunKey = 0;  // its address keys the Run in the Lua registry

void* allocate(void* ud, void* ptr, size_t old_bytes, size_t new_bytes) {
  Run& run = *static_cast<Run*>(ud);
  if (new_bytes == 0) {
    run.memory_bytes -= old_bytes;
    std::free(ptr);
    return nullptr;
  }
  if (run.limited && new_bytes > old_bytes &&
      run.memory_bytes - old_bytes + new_bytes > kMaxMemoryBytes) {
    run.over_memory = true;
    return nullptr;  // Lua raises "not enough memory"
  }
  void* p = std::realloc(ptr, new_bytes);
  // Running out of real memory is not deterministic: this replica cannot go on alike.
  SYNOD_ASSERT(p != nullptr, "out of memory running a script");
  run.memory_bytes = run.memory_bytes - old_bytes + new_bytes;
  return p;
}

Run& run_of(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kRunKey));
  lua_rawget(L, LUA_REGISTRYINDEX);
  Run* run = static_cast<Run*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *run;
}

// Over a bound, the script fails at once and at every instruction after (a pcall in the
// script cannot catch its way past it).
void count_hook(lua_State* L, lua_Debug*) {
  Run& run = run_of(L);
  run.instructions += kHookEvery;
  if (run.instructions > kMaxInstructions) run.over_instructions = true;
  if (run.over_instructions || run.over_memory) {
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "script over its bounds");
  }
}

// A Lua number as Redis 7.0 passes one to a command: "%.17g".
void number_text(lua_Number n, std::string& out) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", n);
  out = buf;
}

Reply ping(const Args& args) {
  if (args.size() > 2) return arity_error("ping");
  return args.size() == 2 ? Reply::bulk(args[1]) : Reply::simple("PONG");
}

// The table's entry for a command a script calls, its subcommand's for a container (SCRIPT
// LOAD); null for an unknown one.
const CommandSpec* describe_call(const Args& args) {
  const CommandSpec* spec = describe_command(lower(args[0]));
  if (spec && !spec->subcommands.empty() && args.size() >= 2)
    return find_subcommand(*spec, lower(args[1]));
  return spec;
}

// redis.call's dispatch: the command table, with Redis's errors for what a script may not run.
Reply dispatch(Keyspace& ks, const CommandRules* rules, const Args& args, bool read_only,
               uint64_t now_ms) {
  const std::string name = lower(args[0]);
  if (name == "ping") {
    // PING is the server's command, not the table's: @connection, as in Redis.
    if (rules && !rules->allows(name, "", kConnection))
      return Reply::error(std::string(kScriptNoPerm));
    return ping(args);
  }
  // What the table flags "noscript" (scripts within scripts, the script cache, transactions,
  // connection commands) a script may not run, as in Redis.
  const CommandSpec* described = describe_call(args);
  if (!described) return Reply::error("ERR Unknown Redis command called from script");
  if (described->has_flag("noscript"))
    return Reply::error("ERR This Redis command is not allowed from script");
  const CommandSpec* spec = find_command(name);
  if (!spec) return Reply::error("ERR Unknown Redis command called from script");
  if (!arity_ok(*spec, args.size()))
    return Reply::error("ERR Wrong number of args calling Redis command from script");
  if (read_only && spec->write)
    return Reply::error("ERR Write commands are not allowed from read-only scripts.");
  // The user's rules, as Redis checks redis.call (after the command is known to exist).
  if (rules && !rules->allows(name, "", spec->categories))
    return Reply::error(std::string(kScriptNoPerm));
  // A read in a script applied from the log is served at the log clock; in a read-only script
  // served as a read, at that read's time.
  return spec->write ? spec->write(ks, args) : spec->read(ks, args, now_ms);
}

void push_table_with(lua_State* L, const char* field, const std::string& text) {
  lua_createtable(L, 0, 1);
  lua_pushlstring(L, text.data(), text.size());
  lua_setfield(L, -2, field);
}

// A reply as Lua sees it (Redis's RESP2-to-Lua conversion).
void push_reply(lua_State* L, const Reply& r) {
  luaL_checkstack(L, 4, "reply nested too deep");
  switch (r.kind) {
    case Reply::Kind::kSimple:
      return push_table_with(L, "ok", r.text);
    case Reply::Kind::kError:
      return push_table_with(L, "err", r.text);
    case Reply::Kind::kInteger:
      return lua_pushnumber(L, static_cast<lua_Number>(r.integer));
    case Reply::Kind::kBulk:
      return lua_pushlstring(L, r.text.data(), r.text.size());
    case Reply::Kind::kNull:
    case Reply::Kind::kNullArray:
      return lua_pushboolean(L, 0);
    case Reply::Kind::kArray:
      lua_createtable(L, static_cast<int>(r.elements.size()), 0);
      for (size_t i = 0; i < r.elements.size(); ++i) {
        push_reply(L, r.elements[i]);
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      return;
  }
}

// redis.call (raise) and redis.pcall: the error raised is a table {err = text}, which the
// error handler gives a place.
int call(lua_State* L, bool raise) {
  Run& run = run_of(L);
  const int argc = lua_gettop(L);
  run.args.resize(static_cast<size_t>(argc));
  bool ok = argc > 0;
  for (int i = 1; ok && i <= argc; ++i) {
    if (lua_type(L, i) == LUA_TNUMBER) {
      number_text(lua_tonumber(L, i), run.args[static_cast<size_t>(i - 1)]);
    } else if (lua_type(L, i) == LUA_TSTRING) {
      size_t n = 0;
      const char* s = lua_tolstring(L, i, &n);
      run.args[static_cast<size_t>(i - 1)].assign(s, n);
    } else {
      ok = false;
    }
  }
  if (argc == 0) {
    run.reply = Reply::error("ERR Please specify at least one argument for this redis lib call");
  } else if (!ok) {
    run.reply = Reply::error("ERR Lua redis lib command arguments must be strings or integers");
  } else {
    run.reply = dispatch(*run.ks, run.rules, run.args, run.read_only, run.now_ms);
  }
  push_reply(L, run.reply);
  if (raise && run.reply.kind == Reply::Kind::kError) return lua_error(L);
  return 1;
}

int redis_call(lua_State* L) {
  return call(L, true);
}
int redis_pcall(lua_State* L) {
  return call(L, false);
}

int reply_table(lua_State* L, const char* field) {
  if (lua_gettop(L) != 1 || !lua_isstring(L, 1))
    return luaL_error(L, "wrong number or type of arguments");
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, field);
  return 1;
}
int redis_error_reply(lua_State* L) {
  return reply_table(L, "err");
}
int redis_status_reply(lua_State* L) {
  return reply_table(L, "ok");
}

int redis_sha1hex(lua_State* L) {
  if (lua_gettop(L) != 1) return luaL_error(L, "wrong number of arguments");
  size_t n = 0;
  const char* s = lua_tolstring(L, 1, &n);
  char hex[41];
  std::snprintf(hex, sizeof(hex), "%s", sha1_hex(std::string_view(s ? s : "", s ? n : 0)).c_str());
  lua_pushstring(L, hex);
  return 1;
}

int returns_nothing(lua_State*) {
  return 0;
}
int returns_true(lua_State* L) {
  lua_pushboolean(L, 1);
  return 1;
}

// math.random and math.randomseed as Redis has them (rand48), seeded from the log position.
int math_random(lua_State* L) {
  Run& run = run_of(L);
  run.rand48 = (run.rand48 * 0x5DEECE66DULL + 0xB) & kRand48Mask;
  const auto v = static_cast<int32_t>(run.rand48 >> 17);
  const lua_Number r = static_cast<lua_Number>(v % kRand48Max) / kRand48Max;
  switch (lua_gettop(L)) {
    case 0:
      lua_pushnumber(L, r);
      return 1;
    case 1: {
      const int u = luaL_checkint(L, 1);
      luaL_argcheck(L, 1 <= u, 1, "interval is empty");
      lua_pushnumber(L, std::floor(r * u) + 1);
      return 1;
    }
    case 2: {
      const int l = luaL_checkint(L, 1);
      const int u = luaL_checkint(L, 2);
      luaL_argcheck(L, l <= u, 2, "interval is empty");
      lua_pushnumber(L, std::floor(r * (u - l + 1)) + l);
      return 1;
    }
    default:
      return luaL_error(L, "wrong number of arguments");
  }
}

void seed_rand48(Run& run, uint32_t seed) {
  run.rand48 = ((uint64_t{seed} << 16) | 0x330E) & kRand48Mask;
}

int math_randomseed(lua_State* L) {
  seed_rand48(run_of(L), static_cast<uint32_t>(luaL_checkint(L, 1)));
  return 0;
}

// tostring without addresses: a table, function, userdata or thread is named by the order this
// run first named it, which every replica shares ("table: 0x00000001").
int deterministic_tostring(lua_State* L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  const int type = lua_type(L, 1);
  if (luaL_callmeta(L, 1, "__tostring")) return 1;
  if (type == LUA_TNIL || type == LUA_TBOOLEAN || type == LUA_TNUMBER || type == LUA_TSTRING) {
    lua_pushvalue(L, lua_upvalueindex(1));  // the original tostring
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(2));  // object -> id
  lua_pushvalue(L, 1);
  lua_rawget(L, 2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushnumber(L, static_cast<lua_Number>(++run_of(L).next_object_id));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, 2);
  }
  char name[64];
  std::snprintf(name, sizeof(name), "%s: 0x%08llx", luaL_typename(L, 1),
                static_cast<unsigned long long>(lua_tonumber(L, -1)));
  lua_pushstring(L, name);
  return 1;
}

int global_index(lua_State* L) {
  return luaL_error(L, "Script attempted to access nonexistent global variable '%s'",
                    lua_tostring(L, 2) ? lua_tostring(L, 2) : "?");
}
int global_newindex(lua_State* L) {
  return luaL_error(L, "Attempt to modify a readonly table");
}

void open_library(lua_State* L, lua_CFunction open, const char* name) {
  lua_pushcfunction(L, open);
  lua_pushstring(L, name);
  lua_call(L, 1, 0);
}

void set_function(lua_State* L, const char* name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}

void set_number(lua_State* L, const char* name, int v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, name);
}

void install_redis_table(lua_State* L) {
  lua_newtable(L);
  set_function(L, "call", redis_call);
  set_function(L, "pcall", redis_pcall);
  set_function(L, "error_reply", redis_error_reply);
  set_function(L, "status_reply", redis_status_reply);
  set_function(L, "sha1hex", redis_sha1hex);
  // Logging would differ per replica's log files, and replication of effects is moot: a script
  // is replicated as itself.
  set_function(L, "log", returns_nothing);
  set_function(L, "set_repl", returns_nothing);
  set_function(L, "replicate_commands", returns_true);
  set_number(L, "LOG_DEBUG", 0);
  set_number(L, "LOG_VERBOSE", 1);
  set_number(L, "LOG_NOTICE", 2);
  set_number(L, "LOG_WARNING", 3);
  set_number(L, "REPL_NONE", 0);
  set_number(L, "REPL_AOF", 1);
  set_number(L, "REPL_SLAVE", 2);
  set_number(L, "REPL_REPLICA", 2);
  set_number(L, "REPL_ALL", 3);
  lua_setglobal(L, "redis");
}

void install_strings(lua_State* L, const std::vector<std::string>& items, const char* name) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  for (size_t i = 0; i < items.size(); ++i) {
    lua_pushlstring(L, items[i].data(), items[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setglobal(L, name);
}

// The libraries a script sees: base (without file access), table, string and math (with
// deterministic random), the redis table, KEYS and ARGV; then globals become read-only.
void install_environment(lua_State* L, const Run& run) {
  open_library(L, luaopen_base, "");
  open_library(L, luaopen_table, LUA_TABLIBNAME);
  open_library(L, luaopen_string, LUA_STRLIBNAME);
  open_library(L, luaopen_math, LUA_MATHLIBNAME);
  for (const char* removed : {"loadfile", "dofile"}) {
    lua_pushnil(L);
    lua_setglobal(L, removed);
  }
  lua_pushcfunction(L, returns_nothing);
  lua_setglobal(L, "print");  // nothing to print to that every replica shares
  lua_getglobal(L, "math");
  set_function(L, "random", math_random);
  set_function(L, "randomseed", math_randomseed);
  lua_pop(L, 1);
  lua_getglobal(L, "tostring");
  lua_newtable(L);
  lua_pushcclosure(L, deterministic_tostring, 2);
  lua_setglobal(L, "tostring");
  install_redis_table(L);
  install_strings(L, *run.keys, "KEYS");
  install_strings(L, *run.argv, "ARGV");
  lua_newtable(L);
  set_function(L, "__index", global_index);
  set_function(L, "__newindex", global_newindex);
  lua_setmetatable(L, LUA_GLOBALSINDEX);
}

// The script's error handler: gives the error a place (the script's line), as Redis's does.
int error_handler(lua_State* L) {
  lua_Debug ar;
  bool found = lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar);
  if (found && std::strcmp(ar.what, "C") == 0)
    found = lua_getstack(L, 2, &ar) && lua_getinfo(L, "Sl", &ar);
  if (!lua_istable(L, 1)) {
    const char* text = lua_tostring(L, 1);
    lua_createtable(L, 0, 3);
    lua_pushfstring(L, "ERR %s", text ? text : luaL_typename(L, 1));
    lua_setfield(L, -2, "err");
    lua_replace(L, 1);
  }
  if (found) {
    lua_pushstring(L, ar.source);
    lua_setfield(L, 1, "source");
    lua_pushinteger(L, ar.currentline);
    lua_setfield(L, 1, "line");
  }
  lua_settop(L, 1);
  return 1;
}

// Sets up the environment and runs the script under the error handler: its result, or its
// error object (script_status says which), is left on the stack. Protected (lua_pcall'd): setting
// up may run out of the script's memory too.
int protected_main(lua_State* L) {
  Run& run = *static_cast<Run*>(lua_touserdata(L, 1));
  lua_pushlightuserdata(L, const_cast<char*>(&kRunKey));
  lua_pushlightuserdata(L, &run);
  lua_rawset(L, LUA_REGISTRYINDEX);
  install_environment(L, run);
  lua_pushcfunction(L, error_handler);
  const int handler = lua_gettop(L);
  run.script_status = luaL_loadbuffer(L, run.body->data(), run.body->size(), "@user_script");
  if (run.script_status != 0) return 1;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, kHookEvery);
  run.script_status = lua_pcall(L, 0, 1, handler);
  lua_sethook(L, nullptr, 0, 0);
  return 1;
}

// Redis's Lua-to-RESP2 conversion; tables nest at most kMaxReplyDepth deep below the top.
Reply to_reply(lua_State* L, int index, int depth, bool& too_deep) {
  switch (lua_type(L, index)) {
    case LUA_TSTRING: {
      size_t n = 0;
      const char* s = lua_tolstring(L, index, &n);
      return Reply::bulk(std::string(s, n));
    }
    case LUA_TBOOLEAN:
      return lua_toboolean(L, index) ? Reply::integer_of(1) : Reply::null();
    case LUA_TNUMBER: {
      const lua_Number n = lua_tonumber(L, index);
      // Truncated toward zero; outside int64 (or NaN), what x86's conversion gives.
      if (!(n > -9223372036854775808.0 && n < 9223372036854775808.0))
        return Reply::integer_of(std::numeric_limits<int64_t>::min());
      return Reply::integer_of(static_cast<int64_t>(n));
    }
    case LUA_TTABLE:
      break;
    default:
      return Reply::null();
  }
  luaL_checkstack(L, 2, "reply");
  for (const char* field : {"err", "ok"}) {
    lua_pushstring(L, field);
    lua_rawget(L, index);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n = 0;
      const char* s = lua_tolstring(L, -1, &n);
      std::string text(s, n);
      lua_pop(L, 1);
      if (field[0] == 'e' && !text.empty() && text[0] == '-') text.erase(0, 1);
      for (char& c : text)
        if (c == '\r' || c == '\n') c = ' ';
      return field[0] == 'e' ? Reply::error(std::move(text)) : Reply::simple(std::move(text));
    }
    lua_pop(L, 1);
  }
  if (depth >= kMaxReplyDepth) {
    too_deep = true;
    return Reply::null();
  }
  std::vector<Reply> elements;
  for (int i = 1;; ++i) {
    lua_rawgeti(L, index, i);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    elements.push_back(to_reply(L, lua_gettop(L), depth + 1, too_deep));
    lua_pop(L, 1);
  }
  return Reply::array(std::move(elements));
}

std::string bound_error(const Run& run, const std::string& sha) {
  if (run.over_instructions)
    return "ERR Error running script " + sha + ": over its bound of " +
           std::to_string(kMaxInstructions) +
           " Lua instructions (a script in a replicated log must end alike on every replica)";
  return "ERR Error running script " + sha + ": over its bound of " +
         std::to_string(kMaxMemoryBytes) + " bytes of Lua memory";
}

// The reply for a failed script: Redis 7's "<error> script: <sha>, on @user_script:<line>.".
Reply script_error(lua_State* L, const std::string& sha) {
  std::string text = "ERR unknown error";
  std::string where;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "err");
    if (lua_type(L, -1) == LUA_TSTRING) text = lua_tostring(L, -1);
    lua_getfield(L, -2, "source");
    lua_getfield(L, -3, "line");
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER)
      where = std::string(", on ") + lua_tostring(L, -2) + ":" + lua_tostring(L, -1) + ".";
    lua_pop(L, 3);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    text = std::string("ERR ") + lua_tostring(L, -1);
  }
  if (!text.empty() && text[0] == '-') text.erase(0, 1);
  for (char& c : text)
    if (c == '\r' || c == '\n') c = ' ';
  return Reply::error(text + " script: " + sha + where);
}

struct LuaState {
  lua_State* L;
  explicit LuaState(Run& run) : L(lua_newstate(allocate, &run)) {
    SYNOD_ASSERT(L != nullptr, "no memory for a Lua state");
  }
  ~LuaState() { lua_close(L); }
  LuaState(const LuaState&) = delete;
  LuaState& operator=(const LuaState&) = delete;
};

// Whether `body` compiles: the error Redis answers if not.
std::optional<Reply> compile_error(const std::string& body) {
  Run run;
  LuaState state(run);
  if (luaL_loadbuffer(state.L, body.data(), body.size(), "@user_script") == 0) return std::nullopt;
  const char* why = lua_tostring(state.L, -1);
  return Reply::error(std::string("ERR Error compiling script (new function): ") +
                      (why ? why : "not enough memory"));
}

// EVAL's and EVALSHA's numkeys, checked against the arguments.
std::optional<Reply> parse_numkeys(const Args& args, size_t& numkeys) {
  int64_t n = 0;
  if (!parse_i64(args[2], n)) return not_integer();
  if (n < 0) return Reply::error("ERR Number of keys can't be negative");
  if (static_cast<uint64_t>(n) > args.size() - 3)
    return Reply::error("ERR Number of keys can't be greater than number of args");
  numkeys = static_cast<size_t>(n);
  return std::nullopt;
}

Reply run_with_args(Keyspace& ks, const std::string& sha, const std::string& body, const Args& args,
                    size_t numkeys, const CommandRules* rules, bool read_only,
                    uint64_t read_now_ms = 0) {
  const auto first_key = args.begin() + 3;
  const std::vector<std::string> keys(first_key, first_key + static_cast<ptrdiff_t>(numkeys));
  const std::vector<std::string> argv(first_key + static_cast<ptrdiff_t>(numkeys), args.end());
  return run_script(ks, sha, body, keys, argv, rules, read_only, read_now_ms);
}

// EVAL and EVAL_RO (which caches the script too, as in Redis).
Reply eval(Keyspace& ks, const Args& args, const CommandRules* rules, bool read_only) {
  size_t numkeys = 0;
  if (auto error = parse_numkeys(args, numkeys)) return *error;
  const std::string& body = args[1];
  const std::string sha = sha1_hex(body);
  if (!ks.scripts().find(sha)) {
    if (auto error = compile_error(body)) return *error;
    // A full cache runs the script uncached; EVALSHA of it answers NOSCRIPT, and clients fall
    // back to EVAL.
    (void)ks.scripts().add(sha, body);
  }
  return run_with_args(ks, sha, body, args, numkeys, rules, read_only);
}

Reply noscript() {
  return Reply::error("NOSCRIPT No matching script. Please use EVAL.");
}

Reply evalsha(Keyspace& ks, const Args& args, const CommandRules* rules, bool read_only) {
  size_t numkeys = 0;
  if (auto error = parse_numkeys(args, numkeys)) return *error;
  if (args[1].size() != 40) return noscript();
  const std::string sha = lower(args[1]);
  const std::string* body = ks.scripts().find(sha);
  if (!body) return noscript();
  // A script cannot change the cache (SCRIPT is refused in scripts): `body` stays put.
  return run_with_args(ks, sha, *body, args, numkeys, rules, read_only);
}

}  // namespace

bool is_cached_read_only_script(const Keyspace& ks, const Args& args) {
  if (args.size() < 3) return false;
  const std::string name = lower(args[0]);
  if (name == "evalsha_ro") return args[1].size() == 40 && ks.scripts().find(lower(args[1]));
  return name == "eval_ro" && ks.scripts().find(sha1_hex(args[1]));
}

Reply read_only_script(const Keyspace& ks, const Args& args, uint64_t now_ms) {
  if (args.size() < 3) return arity_error(args[0]);
  size_t numkeys = 0;
  if (auto error = parse_numkeys(args, numkeys)) return *error;
  std::string sha, body;
  if (lower(args[0]) == "eval_ro") {
    body = args[1];
    sha = sha1_hex(body);
    if (auto error = compile_error(body)) return *error;
  } else {
    sha = lower(args[1]);
    const std::string* cached = args[1].size() == 40 ? ks.scripts().find(sha) : nullptr;
    if (!cached) return noscript();
    body = *cached;
  }
  // A read-only run changes nothing: dispatch refuses every write before it reaches a handler,
  // and only reads' const handlers run (the cache is not touched here).
  return run_with_args(const_cast<Keyspace&>(ks), sha, body, args, numkeys, nullptr, true, now_ms);
}

namespace {

Reply cmd_eval(Keyspace& ks, const Args& args) {
  return eval(ks, args, nullptr, false);
}
Reply cmd_eval_ro(Keyspace& ks, const Args& args) {
  return eval(ks, args, nullptr, true);
}
Reply cmd_evalsha(Keyspace& ks, const Args& args) {
  return evalsha(ks, args, nullptr, false);
}
Reply cmd_evalsha_ro(Keyspace& ks, const Args& args) {
  return evalsha(ks, args, nullptr, true);
}

// SYNOD.EVAL rules EVAL|EVALSHA|EVAL_RO|EVALSHA_RO ...: the script of a user who may not run
// every command, with that user's rules (see acl.h). Only the server writes it; clients cannot
// send it.
Reply cmd_synod_eval(Keyspace& ks, const Args& args) {
  auto rules = CommandRules::parse(args[1]);
  if (!rules.is_ok()) return Reply::error("ERR " + rules.status().message());
  const Args inner(args.begin() + 2, args.end());
  const std::string name = lower(inner[0]);
  if (name == "eval" || name == "eval_ro") return eval(ks, inner, &*rules, name == "eval_ro");
  if (name == "evalsha" || name == "evalsha_ro")
    return evalsha(ks, inner, &*rules, name == "evalsha_ro");
  return Reply::error("ERR SYNOD.EVAL carries EVAL, EVALSHA, EVAL_RO or EVALSHA_RO");
}

Reply script_load(Keyspace& ks, const Args& args) {
  if (args.size() != 3) return arity_error("script|load");
  const std::string sha = sha1_hex(args[2]);
  if (auto error = compile_error(args[2])) return *error;
  if (!ks.scripts().add(sha, args[2])) {
    return Reply::error("ERR the script cache is full (" +
                        std::to_string(ScriptCache::kMaxScripts) + " scripts or " +
                        std::to_string(ScriptCache::kMaxBytes) +
                        " bytes); SCRIPT FLUSH empties it");
  }
  return Reply::bulk(sha);
}

Reply script_flush(Keyspace& ks, const Args& args) {
  if (args.size() > 3) return arity_error("script|flush");
  if (args.size() == 3) {
    const std::string mode = lower(args[2]);
    if (mode != "sync" && mode != "async")
      return Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
  }
  ks.scripts().clear();
  return Reply::ok();
}

Reply cmd_script(Keyspace& ks, const Args& args) {
  const std::string sub = lower(args[1]);
  if (sub == "load") return script_load(ks, args);
  if (sub == "flush") return script_flush(ks, args);
  if (sub == "exists") return script_exists(ks, args);
  // Scripts run inside one log entry's apply: by the time SCRIPT KILL is applied, none runs.
  if (sub == "kill" && args.size() == 2)
    return Reply::error("NOTBUSY No scripts in execution right now.");
  return Reply::error("ERR unknown subcommand '" + args[1] + "'. Try SCRIPT HELP.");
}

}  // namespace

std::string sha1_hex(std::string_view data) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  size_t i = 0;
  for (; i + 64 <= data.size(); i += 64)
    sha1_block(h, reinterpret_cast<const unsigned char*>(data.data() + i));
  unsigned char tail[128] = {};
  const size_t rest = data.size() - i;
  std::memcpy(tail, data.data() + i, rest);
  tail[rest] = 0x80;
  const size_t blocks = rest + 9 <= 64 ? 1 : 2;
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  for (int b = 0; b < 8; ++b)
    tail[blocks * 64 - 1 - static_cast<size_t>(b)] = static_cast<unsigned char>(bits >> (8 * b));
  for (size_t b = 0; b < blocks; ++b) sha1_block(h, tail + 64 * b);
  char hex[41];
  for (int k = 0; k < 5; ++k) std::snprintf(hex + 8 * k, 9, "%08x", h[k]);
  return std::string(hex, 40);
}

std::vector<std::string> encode_eval_with_rules(const CommandRules& rules,
                                                std::vector<std::string> args) {
  args.insert(args.begin(), {"SYNOD.EVAL", rules.text()});
  return args;
}

bool is_script_read(const std::vector<std::string>& args) {
  return args.size() >= 2 && lower(args[0]) == "script" && lower(args[1]) == "exists";
}

Reply script_exists(const Keyspace& ks, const std::vector<std::string>& args) {
  if (args.size() < 3) return arity_error("script|exists");
  std::vector<Reply> found;
  for (size_t i = 2; i < args.size(); ++i)
    found.push_back(Reply::integer_of(ks.scripts().find(lower(args[i])) ? 1 : 0));
  return Reply::array(std::move(found));
}

Reply run_script(Keyspace& ks, const std::string& sha, const std::string& body,
                 const std::vector<std::string>& keys, const std::vector<std::string>& argv,
                 const CommandRules* rules, bool read_only, uint64_t read_now_ms) {
  Run run;
  run.read_only = read_only;
  run.now_ms = std::max(ks.clock_ms(), read_now_ms);
  run.ks = &ks;
  run.rules = rules;
  run.body = &body;
  run.keys = &keys;
  run.argv = &argv;
  seed_rand48(run, static_cast<uint32_t>(ks.seed()));
  LuaState state(run);
  lua_State* L = state.L;
  lua_pushcfunction(L, protected_main);
  lua_pushlightuserdata(L, &run);
  const int status = lua_pcall(L, 1, 1, 0);
  run.limited = false;  // the script is over: converting its reply may allocate freely
  if (run.over_instructions || run.over_memory) return Reply::error(bound_error(run, sha));
  if (status != 0) return script_error(L, sha);
  if (run.script_status != 0) {
    if (run.script_status == LUA_ERRSYNTAX) {
      return Reply::error(std::string("ERR Error compiling script (new function): ") +
                          lua_tostring(L, -1));
    }
    return script_error(L, sha);
  }
  bool too_deep = false;
  Reply reply = to_reply(L, lua_gettop(L), 0, too_deep);
  if (too_deep) {
    return Reply::error("ERR script " + sha + " replied with tables nested deeper than " +
                        std::to_string(kMaxReplyDepth) + " levels, more than Synod keeps");
  }
  return reply;
}

std::vector<CommandSpec> script_commands() {
  constexpr std::string_view kEvalFlags =
      "noscript stale skip_monitor no_mandatory_keys movablekeys";
  constexpr std::string_view kEvalRoFlags =
      "readonly noscript stale skip_monitor no_mandatory_keys movablekeys";
  return {
      {"eval", -3, kEvalFlags, {0, 0, 0, 2}, cmd_eval},
      {"evalsha", -3, kEvalFlags, {0, 0, 0, 2}, cmd_evalsha},
      {"eval_ro", -3, kEvalRoFlags, {0, 0, 0, 2}, cmd_eval_ro},
      {"evalsha_ro", -3, kEvalRoFlags, {0, 0, 0, 2}, cmd_evalsha_ro},
      {"script",
       -2,
       "",
       {},
       cmd_script,
       nullptr,
       0,
       {{"exists", -3, "noscript", {}, nullptr, nullptr, kScripting},
        {"flush", -2, "noscript", {}, nullptr, nullptr, kScripting},
        {"kill", 2, "noscript allow_busy", {}, nullptr, nullptr, kScripting},
        {"load", 3, "noscript stale", {}, nullptr, nullptr, kScripting}}},
      // SYNOD.EVAL rules EVAL script numkeys ...: internal (kv/acl.h).
      {"synod.eval", -5, kEvalFlags, {0, 0, 0, 4}, cmd_synod_eval},
  };
}

}  // namespace synod::kv
