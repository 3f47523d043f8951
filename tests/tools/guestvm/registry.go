package main

// Serving the guest's Get frames from a registry's plain-HTTP v2 API on
// loopback. The host only carries bytes: the guest hashes everything.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const manifestAccept = "application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, " +
	"application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json"

// splitSource splits "host[:port]/repo/name[:tag][@digest]" into the registry
// host (empty when the first component is not a host) and the repository.
func splitSource(source string) (host, repo string, err error) {
	name := source
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		name = name[:i]
	}
	parts := strings.SplitN(name, "/", 2)
	if len(parts) == 2 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		host, name = parts[0], parts[1]
	}
	if name == "" {
		return "", "", fmt.Errorf("source %q names no repository", source)
	}
	return host, name, nil
}

// userAgent marks the courier's fetches in the registry's log (the tests
// tell them from containerd's).
const userAgent = "guest-pull-guestvm (guest courier)"

type getRequest struct {
	Kind   string `json:"kind"`
	Digest string `json:"digest"`
}

type registryClient struct {
	base   string // http://host:port/v2/<repo>
	client *http.Client
}

func newRegistryClient(hostPort, repo string) *registryClient {
	return &registryClient{
		base:   "http://" + hostPort + "/v2/" + repo,
		client: &http.Client{Timeout: 10 * time.Minute},
	}
}

// serveGet answers one Get frame on w: Data frames then DataEnd, or GetError.
// Only a failure to write to the guest is returned.
func (c *registryClient) serveGet(w io.Writer, payload []byte) (int64, error) {
	var req getRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return 0, writeFrame(w, frameGetError, []byte("bad get request: "+err.Error()))
	}
	if !strings.HasPrefix(req.Digest, "sha256:") || len(req.Digest) != 71 || strings.ContainsAny(req.Digest, "/?#") {
		return 0, writeFrame(w, frameGetError, []byte("bad digest "+req.Digest))
	}
	var url string
	switch req.Kind {
	case "manifest":
		url = c.base + "/manifests/" + req.Digest
	case "blob":
		url = c.base + "/blobs/" + req.Digest
	default:
		return 0, writeFrame(w, frameGetError, []byte("unknown kind "+req.Kind))
	}
	httpReq, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, writeFrame(w, frameGetError, []byte(err.Error()))
	}
	httpReq.Header.Set("User-Agent", userAgent)
	if req.Kind == "manifest" {
		httpReq.Header.Set("Accept", manifestAccept)
	}
	resp, err := c.client.Do(httpReq)
	if err != nil {
		return 0, writeFrame(w, frameGetError, []byte(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, writeFrame(w, frameGetError, []byte(fmt.Sprintf("GET %s: %s", url, resp.Status)))
	}
	buf := make([]byte, 256*1024)
	var total int64
	for {
		n, readErr := resp.Body.Read(buf)
		if n > 0 {
			if err := writeFrame(w, frameData, buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if readErr == io.EOF {
			break
		}
		if readErr != nil {
			return total, writeFrame(w, frameGetError, []byte(fmt.Sprintf("GET %s: %v", url, readErr)))
		}
	}
	end, _ := json.Marshal(map[string]int64{"size": total})
	return total, writeFrame(w, frameDataEnd, end)
}
