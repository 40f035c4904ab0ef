package metrics_test

import (
	"context"
	"testing"

	"github.com/dynopilot/dynopilot/metrics"
	"github.com/redis/go-redis/v9"
)

func TestRedisKeys(t *testing.T) {
	url, client := redisDB(t, dbKeys)
	ctx := context.Background()
	client.RPush(ctx, "list", "a", "b", "c")
	client.SAdd(ctx, "set", "a", "b")
	client.ZAdd(ctx, "zset", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 3, Member: "c"}, redis.Z{Score: 4, Member: "d"})
	for range 5 {
		client.XAdd(ctx, &redis.XAddArgs{Stream: "stream", Values: map[string]any{"k": "v"}})
	}
	client.Set(ctx, "string", "x", 0)

	for _, c := range []struct {
		keys string
		want float64
	}{
		{"list", 3},
		{"set", 2},
		{"zset", 4},
		{"stream", 5},
		{"list,set,zset,stream,missing", 14},
		{"missing", 0},
	} {
		got := mustRead(t, open(t, metrics.Settings{Source: "redis", URL: url, Queues: c.keys}))
		if got.Value != c.want {
			t.Errorf("QUEUES=%q: size %v, want %v", c.keys, got.Value, c.want)
		}
	}

	_, err := read(t, open(t, metrics.Settings{Source: "redis", URL: url, Queues: "list,string"}))
	wantError(t, err, "redis redis://", `key "string" is a string`, "list, set, sorted set or stream")
}
