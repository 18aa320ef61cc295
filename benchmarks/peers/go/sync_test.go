// The twins of sync_bench.cpp: the same sync workloads on goroutines, with
// the same case names and metric units. The primitive benchmarks are the
// ones in Go's own sync package (mutex_test.go, rwmutex_test.go,
// waitgroup_test.go, once_test.go, pool_test.go), which is where Go's
// published figures come from, wrapped in the clock reportPerUnit needs.
// b.RunParallel runs GOMAXPROCS × parallelism goroutines that share b.N
// operations; gofer's run_parallel is the same shape with fibers.
package goferpeers

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runParallel is b.RunParallel with `goroutines` goroutines in all (GOMAXPROCS
// must divide it), timed from before the goroutines start to after the last
// has finished.
func runParallel(b *testing.B, goroutines int, body func(*testing.PB)) time.Duration {
	if goroutines > 0 {
		b.SetParallelism(goroutines / runtime.GOMAXPROCS(0))
	}
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(body)
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}

// The gofer baseline lock_floor (a bare CAS and atomic subtraction) has no
// twin: it measures the machine, not an implementation.

// sync's BenchmarkMutexUncontended: a mutex of its own per goroutine.
func BenchmarkMutexUncontended(b *testing.B) {
	type paddedMutex struct {
		sync.Mutex
		pad [128]uint8
	}
	elapsed := runParallel(b, 0, func(pb *testing.PB) {
		var mu paddedMutex
		for pb.Next() {
			mu.Lock()
			mu.Unlock()
		}
	})
	reportPerUnit(b, "ns_per_lock", elapsed, float64(b.N))
}

// sync's BenchmarkMutex with eight goroutines sharing one mutex.
func BenchmarkMutexContended8(b *testing.B) {
	var mu sync.Mutex
	elapsed := runParallel(b, 8, func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			mu.Unlock()
		}
	})
	reportPerUnit(b, "ns_per_lock", elapsed, float64(b.N))
}

// sync's BenchmarkRWMutexWrite10 (benchmarkRWMutex(b, 0, 10)) with eight
// goroutines: every tenth operation a write lock, the rest read locks.
func BenchmarkRWMutexRead90x8(b *testing.B) {
	var rw sync.RWMutex
	elapsed := runParallel(b, 8, func(pb *testing.PB) {
		foo := 0
		for pb.Next() {
			foo++
			if foo%10 == 0 {
				rw.Lock()
				rw.Unlock()
			} else {
				rw.RLock()
				rw.RUnlock()
			}
		}
		_ = foo
	})
	reportPerUnit(b, "ns_per_op", elapsed, float64(b.N))
}

// sync's BenchmarkWaitGroupUncontended: Add(1), Done(), and a Wait that finds
// the counter at zero, on a WaitGroup of its own per goroutine.
func BenchmarkWaitGroupUncontended(b *testing.B) {
	type paddedWaitGroup struct {
		sync.WaitGroup
		pad [128]uint8
	}
	elapsed := runParallel(b, 0, func(pb *testing.PB) {
		var wg paddedWaitGroup
		for pb.Next() {
			wg.Add(1)
			wg.Done()
			wg.Wait()
		}
	})
	reportPerUnit(b, "ns_per_op", elapsed, float64(b.N))
}

// sync's BenchmarkOnce: every goroutine calls one shared Once.
func BenchmarkOnceDone(b *testing.B) {
	var once sync.Once
	ran := 0
	f := func() { ran++ }
	elapsed := runParallel(b, 0, func(pb *testing.PB) {
		for pb.Next() {
			once.Do(f)
		}
	})
	if ran != 1 {
		b.Fatalf("the Once ran its function %d times", ran)
	}
	reportPerUnit(b, "ns_per_call", elapsed, float64(b.N))
}

// Channel or mutex, 1: a counter that eight goroutines increment b.N times in
// all, guarded by a sync.Mutex.
func BenchmarkCounterMutex8(b *testing.B) {
	var mu sync.Mutex
	var counter int64
	elapsed := runParallel(b, 8, func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	})
	if counter != int64(b.N) {
		b.Fatalf("the counter is %d after %d increments", counter, b.N)
	}
	reportPerUnit(b, "ns_per_increment", elapsed, float64(b.N))
}

// Channel or mutex, 2: the counter owned by one goroutine, which ranges over
// a channel of increments (buffered 128, as the stream benchmarks) that eight
// goroutines send to; the clock stops once it has counted them all.
func BenchmarkCounterChan8(b *testing.B) {
	inc := make(chan int, chanBuffer)
	var ownerDone sync.WaitGroup
	var counter int64
	b.ResetTimer()
	start := time.Now()
	ownerDone.Add(1)
	go func() {
		defer ownerDone.Done()
		for d := range inc {
			counter += int64(d)
		}
	}()
	b.SetParallelism(8 / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			inc <- 1
		}
	})
	close(inc)
	ownerDone.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if counter != int64(b.N) {
		b.Fatalf("the owner counted %d of %d increments", counter, b.N)
	}
	reportPerUnit(b, "ns_per_increment", elapsed, float64(b.N))
}

// The queue of std_bench.cpp on sync.Mutex and sync.Cond: a ring under one
// lock, a condition for each direction, a Signal after every push and pop.
type condQueue struct {
	mu       sync.Mutex
	notFull  sync.Cond
	notEmpty sync.Cond
	ring     []int
	head     int
	size     int
	closed   bool
}

func newCondQueue(capacity int) *condQueue {
	q := &condQueue{ring: make([]int, capacity)}
	q.notFull.L = &q.mu
	q.notEmpty.L = &q.mu
	return q
}

func (q *condQueue) push(v int) {
	q.mu.Lock()
	for q.size == len(q.ring) {
		q.notFull.Wait()
	}
	q.ring[(q.head+q.size)%len(q.ring)] = v
	q.size++
	q.mu.Unlock()
	q.notEmpty.Signal()
}

func (q *condQueue) pop() (int, bool) {
	q.mu.Lock()
	for q.size == 0 && !q.closed {
		q.notEmpty.Wait()
	}
	if q.size == 0 {
		q.mu.Unlock()
		return 0, false
	}
	v := q.ring[q.head]
	q.head = (q.head + 1) % len(q.ring)
	q.size--
	q.mu.Unlock()
	q.notFull.Signal()
	return v, true
}

func (q *condQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.notEmpty.Broadcast()
}

// Channel or mutex, 3: BenchmarkStream4p4c's stream through condQueue
// instead of a channel.
func BenchmarkQueueCond4p4c(b *testing.B) {
	const producers, consumers = 4, 4
	n := b.N
	q := newCondQueue(chanBuffer)
	var sent, drained sync.WaitGroup
	var received atomic.Int64
	b.ResetTimer()
	start := time.Now()
	drained.Add(consumers)
	for k := 0; k < consumers; k++ {
		go func() {
			defer drained.Done()
			var mine int64
			for {
				if _, ok := q.pop(); !ok {
					break
				}
				mine++
			}
			received.Add(mine)
		}()
	}
	sent.Add(producers)
	for p := 0; p < producers; p++ {
		share := n / producers
		if p < n%producers {
			share++
		}
		go func(share int) {
			defer sent.Done()
			for i := 0; i < share; i++ {
				q.push(i)
			}
		}(share)
	}
	sent.Wait()
	q.close()
	drained.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got != int64(n) {
		b.Fatalf("the consumers received %d of %d messages", got, n)
	}
	reportPerUnit(b, "ns_per_msg", elapsed, float64(n))
}

// sync's BenchmarkPool with a 64-byte object: Get (New allocates one when
// the pool has none) and Put it back, on one shared pool.
func BenchmarkPoolGetPut(b *testing.B) {
	p := sync.Pool{New: func() any { return new([64]byte) }}
	elapsed := runParallel(b, 0, func(pb *testing.PB) {
		for pb.Next() {
			x := p.Get().(*[64]byte)
			p.Put(x)
		}
	})
	reportPerUnit(b, "ns_per_op", elapsed, float64(b.N))
}

// A semaphore nobody else wants, one per goroutine: acquire 1 and release it.
// golang.org/x/sync/semaphore.Weighted is not in the standard library and
// nothing may be downloaded here (nor is Debian's golang-golang-x-sync-dev
// installed), so this is the idiomatic buffered-channel semaphore: a send
// acquires, a receive releases.
func BenchmarkSemaphoreUncontended(b *testing.B) {
	elapsed := runParallel(b, 0, func(pb *testing.PB) {
		sem := make(chan struct{}, 1)
		for pb.Next() {
			sem <- struct{}{}
			<-sem
		}
	})
	reportPerUnit(b, "ns_per_op", elapsed, float64(b.N))
}

// A context with 1000 children, each watched by a goroutine blocked on its
// Done(); the clock runs from cancel() until the last watcher has returned.
func BenchmarkContextCancel1000(b *testing.B) {
	const watchers = 1000
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		parent, cancel := context.WithCancel(context.Background())
		var ready, finished sync.WaitGroup
		ready.Add(watchers)
		finished.Add(watchers)
		for k := 0; k < watchers; k++ {
			child, childCancel := context.WithCancel(parent)
			go func() {
				done := child.Done()
				ready.Done()
				<-done
				childCancel()
				finished.Done()
			}()
		}
		ready.Wait()
		start := time.Now()
		cancel()
		finished.Wait()
		total += time.Since(start)
	}
	b.StopTimer()
	reportPerUnit(b, "ns_per_watcher", total, float64(b.N)*watchers)
}
