package metrics_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/dynopilot/dynopilot/metrics"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	// The failure tests make go-redis fail to dial on purpose; its messages go where the program would send them.
	redis.SetLogger(metrics.RedisLogger(slog.New(slog.DiscardHandler)))
	os.Exit(m.Run())
}
