// Reads QR codes from the camera on every browser: the browser's own BarcodeDetector where it has
// one that reads QR codes, else jsQR (vendor/jsqr, loaded before this file) over the video's frames.
"use strict";

const SCAN_INTERVAL_MS = 200;
const SCAN_FRAME_EDGE_PX_MAX = 720; // frames are scaled down to this before decoding: fast on old phones

// Each decoder answers the texts of the QR codes it sees in one video frame.
async function nativeQrDecoder() {
  if (!("BarcodeDetector" in window)) return null;
  try {
    if (!(await BarcodeDetector.getSupportedFormats()).includes("qr_code")) return null;
  } catch {
    return null;
  }
  const detector = new BarcodeDetector({ formats: ["qr_code"] });
  return { name: "native", decode: async (video) => (await detector.detect(video)).map((code) => code.rawValue) };
}

function jsqrDecoder() {
  if (typeof jsQR !== "function") return null;
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return {
    name: "jsqr",
    decode: async (video) => {
      const scale = Math.min(1, SCAN_FRAME_EDGE_PX_MAX / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      if (!canvas.width || !canvas.height) return [];
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const frame = context.getImageData(0, 0, canvas.width, canvas.height);
      const found = jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "attemptBoth" });
      return found ? [found.data] : [];
    },
  };
}

class QrScanner {
  // A camera is all it needs: decoding works everywhere (jsQR when the browser cannot).
  static get available() {
    return Boolean(navigator.mediaDevices?.getUserMedia) && (typeof jsQR === "function" || "BarcodeDetector" in window);
  }

  // `accept(text)` answers true when the text is what the caller wanted; scanning then stops.
  constructor(video, accept) {
    this.video = video;
    this.accept = accept;
    this.stream = null;
    this.timer = null;
    this.decoder = null;
    this.busy = false;
  }

  async start() {
    this.decoder = (await nativeQrDecoder()) ?? jsqrDecoder();
    if (!this.decoder) throw new Error("no QR decoder");
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    this.video.srcObject = this.stream;
    this.video.dataset.decoder = this.decoder.name;
    await this.video.play();
    this.timer = setInterval(() => this.scanOnce(), SCAN_INTERVAL_MS);
  }

  async scanOnce() {
    if (this.busy || !this.stream || this.video.readyState < 2) return;
    this.busy = true;
    try {
      const texts = await this.decoder.decode(this.video).catch(() => []);
      if (this.stream && texts.some((text) => this.accept(text))) this.stop();
    } finally {
      this.busy = false;
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
  }
}
