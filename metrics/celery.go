package metrics

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// celeryPrioritySep is what kombu's Redis transport puts between a queue's name and a priority to name that
// priority's list (Channel.sep): messages of priority 3 on queue celery wait in "celery\x06\x163".
const celeryPrioritySep = "\x06\x16"

// celeryKind reads the size of Celery queues on a Redis broker: kombu keeps each queue as a list named after it
// (default "celery"), plus one list per non-zero priority step (3, 6, 9 by default, any of 1 to 9 with custom
// priority_steps); all of them are counted. A Celery message carries no enqueue time, so only size can be read.
func celeryKind() kind {
	return kind{
		name:      KindCelery,
		backend:   redisBackend(),
		measures:  []string{MeasureSize},
		queues:    optional,
		queueNoun: "queues",
		defQueues: []string{"celery"},
		open: func(c *Connections, s Spec) (Source, error) {
			client, err := c.redisClient(s.URL)
			if err != nil {
				return nil, err
			}
			return &celery{client: client, keys: celeryKeys(s.Queues)}, nil
		},
	}
}

// celeryKeys names the lists of the queues: each queue's own and its priority lists.
func celeryKeys(queues []string) []string {
	var keys []string
	for _, q := range queues {
		keys = append(keys, q)
		for pri := 1; pri <= 9; pri++ {
			keys = append(keys, q+celeryPrioritySep+strconv.Itoa(pri))
		}
	}
	return keys
}

type celery struct {
	client *redis.Client
	keys   []string // every queue's list and its priority lists
}

// Read takes one round trip.
func (s *celery) Read(ctx context.Context) (Reading, error) {
	return listLengths(ctx, s.client, s.keys)
}
