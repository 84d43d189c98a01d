// A line chart as a PNG, without a browser or a drawing library: an RGB
// raster, a 5×7 bitmap font for the labels, and the PNG container written
// with node:zlib (deflate and CRC-32).
import { crc32, deflateSync } from "node:zlib";

type Rgb = [number, number, number];

// 5×7 glyphs, one string of 7 rows of 5 bits each (1 = ink), for what the labels use.
const glyphs: Record<string, string> = {
  "0": "01110 10001 10011 10101 11001 10001 01110",
  "1": "00100 01100 00100 00100 00100 00100 01110",
  "2": "01110 10001 00001 00010 00100 01000 11111",
  "3": "11110 00001 00001 01110 00001 00001 11110",
  "4": "00010 00110 01010 10010 11111 00010 00010",
  "5": "11111 10000 11110 00001 00001 10001 01110",
  "6": "00110 01000 10000 11110 10001 10001 01110",
  "7": "11111 00001 00010 00100 01000 01000 01000",
  "8": "01110 10001 10001 01110 10001 10001 01110",
  "9": "01110 10001 10001 01111 00001 00010 01100",
  A: "01110 10001 10001 11111 10001 10001 10001",
  B: "11110 10001 10001 11110 10001 10001 11110",
  C: "01110 10001 10000 10000 10000 10001 01110",
  D: "11110 10001 10001 10001 10001 10001 11110",
  E: "11111 10000 10000 11110 10000 10000 11111",
  F: "11111 10000 10000 11110 10000 10000 10000",
  G: "01110 10001 10000 10111 10001 10001 01111",
  H: "10001 10001 10001 11111 10001 10001 10001",
  I: "01110 00100 00100 00100 00100 00100 01110",
  J: "00111 00010 00010 00010 00010 10010 01100",
  K: "10001 10010 10100 11000 10100 10010 10001",
  L: "10000 10000 10000 10000 10000 10000 11111",
  M: "10001 11011 10101 10101 10001 10001 10001",
  N: "10001 10001 11001 10101 10011 10001 10001",
  O: "01110 10001 10001 10001 10001 10001 01110",
  P: "11110 10001 10001 11110 10000 10000 10000",
  Q: "01110 10001 10001 10001 10101 10010 01101",
  R: "11110 10001 10001 11110 10100 10010 10001",
  S: "01111 10000 10000 01110 00001 00001 11110",
  T: "11111 00100 00100 00100 00100 00100 00100",
  U: "10001 10001 10001 10001 10001 10001 01110",
  V: "10001 10001 10001 10001 10001 01010 00100",
  W: "10001 10001 10001 10101 10101 10101 01010",
  X: "10001 10001 01010 00100 01010 10001 10001",
  Y: "10001 10001 01010 00100 00100 00100 00100",
  Z: "11111 00001 00010 00100 01000 10000 11111",
  " ": "00000 00000 00000 00000 00000 00000 00000",
  ".": "00000 00000 00000 00000 00000 01100 01100",
  ",": "00000 00000 00000 00000 01100 00100 01000",
  ":": "00000 01100 01100 00000 01100 01100 00000",
  "-": "00000 00000 00000 11111 00000 00000 00000",
  "/": "00001 00010 00010 00100 01000 01000 10000",
  "(": "00010 00100 01000 01000 01000 00100 00010",
  ")": "01000 00100 00010 00010 00010 00100 01000",
  "=": "00000 00000 11111 00000 11111 00000 00000",
  "%": "11001 11010 00010 00100 01000 01011 10011",
  "<": "00010 00100 01000 10000 01000 00100 00010",
  ">": "01000 00100 00010 00001 00010 00100 01000",
};

class Raster {
  readonly pixels: Uint8Array;
  readonly width: number;
  readonly height: number;

  constructor(width: number, height: number, background: Rgb = [255, 255, 255]) {
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.pixels.set(background, i * 3);
  }

  set(x: number, y: number, color: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.pixels.set(color, (y * this.width + x) * 3);
  }

  rect(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, color);
  }

  /** A line `thickness` pixels wide (Bresenham, stamped). */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, thickness = 1): void {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      this.rect(Math.round(x - (thickness - 1) / 2), Math.round(y - (thickness - 1) / 2), thickness, thickness, color);
    }
  }

  /** Text in the 5×7 font at `scale`, upper-cased; `anchor` aligns it on x. */
  text(x: number, y: number, text: string, color: Rgb, options: { scale?: number; anchor?: "start" | "middle" | "end"; vertical?: boolean } = {}): void {
    const scale = options.scale ?? 2;
    const chars = [...text.toUpperCase()];
    const advance = 6 * scale;
    const length = chars.length * advance - scale;
    const shift = options.anchor === "middle" ? length / 2 : options.anchor === "end" ? length : 0;
    chars.forEach((ch, k) => {
      const rows = (glyphs[ch] ?? glyphs[" "]).split(" ");
      rows.forEach((row, r) => {
        for (let c = 0; c < 5; c++) {
          if (row[c] !== "1") continue;
          const along = k * advance + c * scale - shift;
          for (let dy = 0; dy < scale; dy++)
            for (let dx = 0; dx < scale; dx++) {
              if (options.vertical) this.set(x + r * scale + dy, y - along - dx, color);
              else this.set(x + along + dx, y + r * scale + dy, color);
            }
        }
      });
    });
  }

  png(): Buffer {
    const stride = this.width * 3 + 1;
    const raw = Buffer.alloc(stride * this.height);
    for (let y = 0; y < this.height; y++) {
      raw[y * stride] = 0; // filter: none
      raw.set(this.pixels.subarray(y * this.width * 3, (y + 1) * this.width * 3), y * stride + 1);
    }
    const header = Buffer.alloc(13);
    header.writeUInt32BE(this.width, 0);
    header.writeUInt32BE(this.height, 4);
    header[8] = 8; // bit depth
    header[9] = 2; // colour type: RGB
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", header),
      chunk("IDAT", deflateSync(raw, { level: 9 })),
      chunk("IEND", Buffer.alloc(0)),
    ]);
  }
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Points in data units. */
  series: { color: Rgb; points: [number, number][] }[];
  /** Vertical markers, e.g. "server stopped". */
  markers?: { x: number; label: string; color: Rgb }[];
  /** Horizontal reference lines, e.g. the agent count. */
  levels?: { y: number; label: string; color: Rgb }[];
  xMax: number;
  yMax: number;
}

const niceStep = (range: number, ticks: number) => {
  const raw = range / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
};

export function drawLineChart(chart: LineChart, width = 960, height = 540): Buffer {
  const r = new Raster(width, height);
  const left = 110;
  const right = width - 30;
  const top = 60;
  const bottom = height - 70;
  const px = (x: number) => left + (x / chart.xMax) * (right - left);
  const py = (y: number) => bottom - (y / chart.yMax) * (bottom - top);
  const grid: Rgb = [225, 225, 225];
  const ink: Rgb = [40, 40, 40];
  const xStep = niceStep(chart.xMax, 10);
  for (let x = 0; x <= chart.xMax + 1e-9; x += xStep) {
    r.line(px(x), top, px(x), bottom, grid);
    r.text(px(x), bottom + 10, String(Math.round(x)), ink, { anchor: "middle" });
  }
  const yStep = niceStep(chart.yMax, 8);
  for (let y = 0; y <= chart.yMax + 1e-9; y += yStep) {
    r.line(left, py(y), right, py(y), grid);
    r.text(left - 10, py(y) - 7, String(Math.round(y)), ink, { anchor: "end" });
  }
  r.line(left, top, left, bottom, ink, 2);
  r.line(left, bottom, right, bottom, ink, 2);
  for (const level of chart.levels ?? []) {
    for (let x = left; x < right; x += 12) r.line(x, py(level.y), Math.min(x + 6, right), py(level.y), level.color, 2);
    r.text(right - 4, py(level.y) - 20, level.label, level.color, { anchor: "end" });
  }
  for (const m of chart.markers ?? []) {
    for (let y = top; y < bottom; y += 12) r.line(px(m.x), y, px(m.x), Math.min(y + 6, bottom), m.color, 2);
    r.text(px(m.x) + 6, top + 40 + 22 * (chart.markers ?? []).indexOf(m), m.label, m.color);
  }
  for (const s of chart.series) {
    for (let i = 1; i < s.points.length; i++) r.line(px(s.points[i - 1][0]), py(s.points[i - 1][1]), px(s.points[i][0]), py(s.points[i][1]), s.color, 3);
  }
  r.text(width / 2, 18, chart.title, ink, { anchor: "middle", scale: 3 });
  r.text((left + right) / 2, height - 30, chart.xLabel, ink, { anchor: "middle" });
  r.text(24, (top + bottom) / 2, chart.yLabel, ink, { anchor: "middle", vertical: true });
  return r.png();
}
