// net/http + gorilla/sessions + boj/redistore (redigo) against sessiond: create, read,
// refresh, expire and destroy a session through an HTTP handler, checking the data in
// sessiond. Built in GOPATH mode against Debian's Go sources; run by compat/stack.py:
//
//	sessions PORT
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/boj/redistore"
	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/securecookie"
)

var port = os.Args[len(os.Args)-1]

const deadline = 20 * time.Second

func handler(store *redistore.RediStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		// A cookie that no longer decodes (its MaxAge passed) gives a new session, as web
		// apps treat it; a store error fails the request (the client retries it).
		if e, ok := err.(securecookie.Error); err != nil && !(ok && e.IsDecode()) {
			http.Error(w, err.Error(), 500)
			return
		}
		switch r.URL.Path {
		case "/create":
			s.Values["user"] = "alice"
			s.Values["n"] = 1
		case "/incr":
			n, _ := s.Values["n"].(int)
			s.Values["n"] = n + 1
		case "/destroy":
			s.Options.MaxAge = -1
		}
		if r.URL.Path != "/read" {
			if err := s.Save(r, w); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		fmt.Fprintf(w, "user=%v n=%v", s.Values["user"], s.Values["n"])
	}
}

// get sends one request, retried while the cluster fails over, until want(body).
func get(srv *httptest.Server, path string, cookie *http.Cookie, want func(string) bool) (*http.Response, string) {
	end := time.Now().Add(deadline)
	for {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, err := http.DefaultClient.Do(req)
		body := ""
		if err == nil {
			buf := new(strings.Builder)
			b := make([]byte, 4096)
			n, _ := res.Body.Read(b)
			buf.Write(b[:n])
			res.Body.Close()
			body = buf.String()
			if res.StatusCode == 200 && (want == nil || want(body)) {
				return res, body
			}
		}
		if time.Now().After(end) {
			fail(path, fmt.Sprintf("kept failing: %v %q", err, body))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fail(step, why string) {
	fmt.Printf("FAIL redistore %s: %s\n", step, why)
	os.Exit(1)
}

func cookieOf(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			return c
		}
	}
	fail("cookie", "no session cookie")
	return nil
}

func main() {
	addr := "127.0.0.1:" + port
	store, err := redistore.NewRediStore(10, "tcp", addr, "", []byte("secret-key"))
	if err != nil {
		fail("connect", err.Error())
	}
	defer store.Close()
	store.SetMaxAge(60)
	srv := httptest.NewServer(handler(store))
	defer srv.Close()
	raw, err := redis.Dial("tcp", addr)
	if err != nil {
		fail("dial", err.Error())
	}
	keys := func() []string {
		k, _ := redis.Strings(raw.Do("KEYS", "session_*"))
		return k
	}

	res, _ := get(srv, "/create", nil, nil)
	c := cookieOf(res)
	if k := keys(); len(k) != 1 {
		fail("create", fmt.Sprintf("stored %v", k))
	} else if ttl, _ := redis.Int(raw.Do("TTL", k[0])); ttl < 55 || ttl > 60 {
		fail("create", fmt.Sprintf("ttl %d", ttl))
	}
	fmt.Println("ok   redistore create")
	get(srv, "/read", c, func(b string) bool { return b == "user=alice n=1" })
	fmt.Println("ok   redistore read")

	fmt.Println("KILL?")
	bufio.NewReader(os.Stdin).ReadString('\n')
	raw.Close()
	raw, _ = redis.Dial("tcp", addr)

	get(srv, "/incr", c, func(b string) bool { return b == "user=alice n=2" })
	get(srv, "/read", c, func(b string) bool { return b == "user=alice n=2" })
	fmt.Println("ok   redistore refresh after a leader kill")

	short, err := redistore.NewRediStore(2, "tcp", addr, "", []byte("secret-key"))
	if err != nil {
		fail("connect", err.Error())
	}
	short.SetMaxAge(1)
	ssrv := httptest.NewServer(handler(short))
	defer ssrv.Close()
	before := len(keys())
	res, _ = get(ssrv, "/create", nil, nil)
	sc := cookieOf(res)
	end := time.Now().Add(10 * time.Second)
	for len(keys()) > before && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(keys()) > before {
		fail("expire", "the short session did not expire")
	}
	get(ssrv, "/read", sc, func(b string) bool { return b == "user=<nil> n=<nil>" })
	fmt.Println("ok   redistore expire")

	get(srv, "/destroy", c, nil)
	if k := keys(); len(k) != 0 {
		fail("destroy", fmt.Sprintf("left %v", k))
	}
	get(srv, "/read", c, func(b string) bool { return b == "user=<nil> n=<nil>" })
	fmt.Println("ok   redistore destroy")

	// NewRediStoreWithDB: the same flow in database 1, which database 0 does not see.
	db1, err := redistore.NewRediStoreWithDB(10, "tcp", addr, "", "1", []byte("secret-key"))
	if err != nil {
		fail("connect db 1", err.Error())
	}
	defer db1.Close()
	db1.SetMaxAge(60)
	dsrv := httptest.NewServer(handler(db1))
	defer dsrv.Close()
	res, _ = get(dsrv, "/create", nil, nil)
	dc := cookieOf(res)
	get(dsrv, "/incr", dc, func(b string) bool { return b == "user=alice n=2" })
	if k := keys(); len(k) != 0 {
		fail("db 1", fmt.Sprintf("database 0 sees %v", k))
	}
	raw1, err := redis.Dial("tcp", addr, redis.DialDatabase(1))
	if err != nil {
		fail("dial db 1", err.Error())
	}
	if k, _ := redis.Strings(raw1.Do("KEYS", "session_*")); len(k) != 1 {
		fail("db 1", fmt.Sprintf("database 1 holds %v", k))
	}
	get(dsrv, "/destroy", dc, nil)
	if k, _ := redis.Strings(raw1.Do("KEYS", "session_*")); len(k) != 0 {
		fail("db 1 destroy", fmt.Sprintf("left %v", k))
	}
	fmt.Println("ok   redistore NewRediStoreWithDB(..., \"1\")")
}
