package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSplitSource(t *testing.T) {
	for _, c := range []struct{ in, host, repo string }{
		{"127.0.0.1:5000/guestvm/app@sha256:" + strings.Repeat("a", 64), "127.0.0.1:5000", "guestvm/app"},
		{"localhost/app:v1", "localhost", "app"},
		{"library/app:v1", "", "library/app"},
		{"registry.example:443/a/b:tag@sha256:" + strings.Repeat("b", 64), "registry.example:443", "a/b"},
	} {
		host, repo, err := splitSource(c.in)
		if err != nil || host != c.host || repo != c.repo {
			t.Errorf("splitSource(%q) = %q, %q, %v; want %q, %q", c.in, host, repo, err, c.host, c.repo)
		}
	}
	if _, _, err := splitSource("127.0.0.1:5000/"); err == nil {
		t.Error("a source without repository was accepted")
	}
}

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, frameLog, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes()[:5]; !bytes.Equal(got, []byte{0, 0, 0, 5, 'L'}) {
		t.Fatalf("header %v", got)
	}
	f, err := readFrame(&buf)
	if err != nil || f.typ != frameLog || string(f.payload) != "hello" {
		t.Fatalf("readFrame = %+v, %v", f, err)
	}
	if err := writeFrame(&buf, frameData, make([]byte, maxFramePayload+1)); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

func TestServeGetStreamsBlobsAndReportsErrors(t *testing.T) {
	digest := "sha256:" + strings.Repeat("c", 64)
	blob := bytes.Repeat([]byte("x"), 300*1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/repo/blobs/"+digest {
			w.Write(blob)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c := newRegistryClient(strings.TrimPrefix(srv.URL, "http://"), "repo")

	var out bytes.Buffer
	n, err := c.serveGet(&out, []byte(`{"kind":"blob","digest":"`+digest+`"}`))
	if err != nil || n != int64(len(blob)) {
		t.Fatalf("serveGet = %d, %v", n, err)
	}
	var got []byte
	for {
		f, err := readFrame(&out)
		if err != nil {
			t.Fatal(err)
		}
		if f.typ == frameDataEnd {
			break
		}
		if f.typ != frameData {
			t.Fatalf("unexpected frame %q", f.typ)
		}
		got = append(got, f.payload...)
	}
	if !bytes.Equal(got, blob) {
		t.Fatal("blob bytes differ")
	}

	for _, req := range []string{
		`{"kind":"manifest","digest":"` + digest + `"}`, // 404
		`{"kind":"blob","digest":"sha256:../../etc"}`,
		`{"kind":"tags","digest":"` + digest + `"}`,
	} {
		out.Reset()
		if _, err := c.serveGet(&out, []byte(req)); err != nil {
			t.Fatal(err)
		}
		if f, err := readFrame(&out); err != nil || f.typ != frameGetError {
			t.Errorf("%s: got %+v, %v; want a GetError frame", req, f, err)
		}
	}
}

func TestOnlyLoopbackRegistries(t *testing.T) {
	for in, want := range map[string]bool{"127.0.0.1:5000": true, "[::1]:80": true, "localhost:1": true, "10.0.0.1:5000": false, "example.com": false} {
		if got := isLoopback(in); got != want {
			t.Errorf("isLoopback(%q) = %v", in, got)
		}
	}
}
