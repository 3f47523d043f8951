package main

// The framed protocol spoken with the guest agent over the virtio-serial
// port: 4-byte big-endian payload length, 1-byte type, payload
// (guest_agent/frame_channel.h has the other side; tests/vm/README.md
// documents it).

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	frameHello    = 'H'
	frameGet      = 'G'
	frameLog      = 'L'
	frameStdout   = 'O'
	frameStderr   = 'E'
	frameExit     = 'X'
	frameFailure  = 'F'
	frameRequest  = 'Q'
	frameData     = 'D'
	frameDataEnd  = 'Z'
	frameGetError = 'N'

	maxFramePayload = 1 << 20
)

type frame struct {
	typ     byte
	payload []byte
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxFramePayload {
		return fmt.Errorf("frame %q payload of %d bytes exceeds %d", typ, len(payload), maxFramePayload)
	}
	buf := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	buf[4] = typ
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

func readFrame(r io.Reader) (frame, error) {
	var header [5]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return frame{}, err
	}
	size := binary.BigEndian.Uint32(header[:4])
	if size > maxFramePayload {
		return frame{}, fmt.Errorf("frame of %d bytes exceeds %d (not the agent's protocol?)", size, maxFramePayload)
	}
	f := frame{typ: header[4], payload: make([]byte, size)}
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return frame{}, fmt.Errorf("frame %q cut short: %w", f.typ, err)
	}
	return f, nil
}
