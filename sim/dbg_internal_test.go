package sim

import (
	"context"
	"testing"
	"time"
)

func TestDbgBreaches(t *testing.T) {
	tr, _ := LoadTrace("/work/shared/traces/nasa_jul1995_1min.csv")
	tr = tr.Scaled(50)
	pc, err := LoadPolicy([]string{"POLICY_0_MAX=100", "POLICY_0_TARGET=400ms"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := DefaultModel()
	cs, _ := Contenders(pc, m, Reading{Kind: ReadingLatency, Window: 30 * time.Second, Delay: 15 * time.Second})
	res, _ := Run(context.Background(), tr, m, []Contender{cs[2], cs[6]}, Options{Series: true})
	s := res[0].Series
	spike, other := 0, 0
	for i, b := range s.Breach {
		if !b {
			continue
		}
		prev := 0.0
		for j := max(0, i-5); j < i; j++ {
			prev = max(prev, float64(s.Rate[j]))
		}
		if float64(s.Rate[i]) > 1.3*prev {
			spike++
		} else {
			other++
			if other < 30 {
				t.Logf("min %d rate %.0f prev max %.0f serving %v booting %v p95 %.2f oracle serving %v", i, s.Rate[i], prev, s.Serving[i], s.Booting[i], s.P95[i], res[1].Series.Serving[i])
			}
		}
	}
	t.Logf("spike breaches %d, others %d", spike, other)
}
