// The twins of select_bench.cpp: the same select workloads on goroutines,
// with the same case names and metric units.
package goferpeers

import (
	"sync"
	"testing"
	"time"
)

// The benchmark goroutine selects over two unbuffered channels; the sender
// alternates between them and sends exactly b.N values, so it ends by itself.
func BenchmarkSelect2Unbuffered(b *testing.B) {
	x := make(chan int)
	y := make(chan int)
	n := b.N
	var senderDone sync.WaitGroup
	senderDone.Add(1)
	go func() {
		defer senderDone.Done()
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				x <- i
			} else {
				y <- i
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		select {
		case <-x:
		case <-y:
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	senderDone.Wait()
	reportPerUnit(b, "ns_per_select", elapsed, float64(n))
}

var selectSink int

// Nothing is ever sent on c, so every select takes the default case.
func BenchmarkSelectDefaultEmpty(b *testing.B) {
	c := make(chan int)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		select {
		case v := <-c:
			selectSink = v
		default:
		}
	}
	reportPerUnit(b, "ns_per_select", time.Since(start), float64(b.N))
}

// select { case <-c: case <-time.After(0): } with c never ready.
func BenchmarkSelectAfter0(b *testing.B) {
	c := make(chan int)
	timedOut := 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		select {
		case <-c:
		case <-time.After(0):
			timedOut++
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if timedOut != b.N {
		b.Fatalf("%d of %d selects timed out", timedOut, b.N)
	}
	reportPerUnit(b, "ns_per_select", elapsed, float64(b.N))
}

// select { case <-c: case <-time.After(time.Hour): } with c always ready.
func BenchmarkSelectTimeoutUnused(b *testing.B) {
	c := make(chan int, 1)
	dataFirst := 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		c <- i
		select {
		case <-c:
			dataFirst++
		case <-time.After(time.Hour):
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if dataFirst != b.N {
		b.Fatalf("%d of %d selects took the ready channel", dataFirst, b.N)
	}
	reportPerUnit(b, "ns_per_select", elapsed, float64(b.N))
}
