/* The floor a hiredis binding could reach (bench/redis.lua): N GETs and N
 * SETs of a 200-byte value on one connection, from C, no Lua at all.
 *
 *   redis_hiredis PORT N PASSWORD   ->  "get <us/op> set <us/op>"
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: redis_hiredis PORT N PASSWORD\n"); return 2; }
  int port = atoi(argv[1]), n = atoi(argv[2]);
  redisContext *c = redisConnect("127.0.0.1", port);
  if (c == NULL || c->err) { fprintf(stderr, "cannot connect\n"); return 1; }
  redisReply *r = redisCommand(c, "AUTH %s", argv[3]);
  if (r == NULL || r->type == REDIS_REPLY_ERROR) { fprintf(stderr, "AUTH failed\n"); return 1; }
  freeReplyObject(r);
  char value[201];
  memset(value, 'v', 200);
  value[200] = '\0';
  r = redisCommand(c, "SET bench:hiredis %s", value);
  if (r == NULL) { fprintf(stderr, "SET failed\n"); return 1; }
  freeReplyObject(r);
  double t0 = now();
  for (int i = 0; i < n; i++) {
    r = redisCommand(c, "GET bench:hiredis");
    if (r == NULL || r->type != REDIS_REPLY_STRING) { fprintf(stderr, "GET failed\n"); return 1; }
    freeReplyObject(r);
  }
  double get = (now() - t0) / n * 1e6;
  t0 = now();
  for (int i = 0; i < n; i++) {
    r = redisCommand(c, "SET bench:hiredis %s", value);
    if (r == NULL) { fprintf(stderr, "SET failed\n"); return 1; }
    freeReplyObject(r);
  }
  double set = (now() - t0) / n * 1e6;
  printf("get %.1f set %.1f\n", get, set);
  redisFree(c);
  return 0;
}
