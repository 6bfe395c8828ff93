import './lists.css';
import { useId } from 'react';

/**
 * Small bar charts drawn as SVG by React itself: a few dozen rectangles need no chart library (no
 * new dependency, nothing to load, styled by the page's CSS). Each chart is one image with a name
 * and a description in words (role="img"), its colours have a legend in text, and its numbers are
 * a table one click away: the text alternative.
 */

export interface Series {
  key: string;
  label: string;
  /** A CSS class giving the bars their colour (see charts.css). */
  className: string;
}

const W = 640;
const H = 170;
const M = { top: 10, right: 8, bottom: 22, left: 36 };
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });

/** "Dec 6" for "2026-12-06" (days are UTC days). */
export const dayLabel = (day: string) => dayFormat.format(new Date(`${day}T00:00:00Z`));

/** A round top for the axis (1, 2, 5, 10, 20, 50 …) so the gridlines say plain numbers. */
function niceMax(n: number): number {
  if (n <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

export function BarChart<D extends { day: string }>({
  title,
  summary,
  data,
  series,
}: {
  title: string;
  summary: string;
  data: readonly D[];
  series: readonly Series[];
}) {
  const captionId = useId();
  const descId = useId();
  const value = (d: D, key: string) => Number((d as Record<string, unknown>)[key] ?? 0);
  const top = niceMax(Math.max(0, ...data.flatMap((d) => series.map((s) => value(d, s.key)))));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const slot = plotW / Math.max(1, data.length);
  const barW = Math.max(1, (slot * 0.8) / series.length);
  const y = (v: number) => M.top + plotH - (v / top) * plotH;
  const ticks = [0, top / 2, top];
  const labelled = new Set([0, Math.floor((data.length - 1) / 2), data.length - 1]);
  return (
    <figure className="chart">
      <figcaption id={captionId}>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={captionId} aria-describedby={descId} preserveAspectRatio="xMidYMid meet">
        <desc id={descId}>{summary}</desc>
        {ticks.map((t) => (
          <g key={t} className="grid">
            <line x1={M.left} x2={W - M.right} y1={y(t)} y2={y(t)} />
            <text x={M.left - 6} y={y(t)} dy="0.32em" textAnchor="end">
              {t}
            </text>
          </g>
        ))}
        {data.map((d, i) => (
          <g key={d.day}>
            {series.map((s, j) => {
              const v = value(d, s.key);
              return v > 0 ? <rect key={s.key} className={s.className} x={M.left + i * slot + slot * 0.1 + j * barW} y={y(v)} width={barW} height={y(0) - y(v)} /> : null;
            })}
            {labelled.has(i) && (
              <text className="axis" x={M.left + i * slot + slot / 2} y={H - 6} textAnchor={i === 0 ? 'start' : i === data.length - 1 ? 'end' : 'middle'}>
                {dayLabel(d.day)}
              </text>
            )}
          </g>
        ))}
      </svg>
      <p className="legend" aria-hidden="true">
        {series.map((s) => (
          <span key={s.key}>
            <span className={`swatch ${s.className}`} /> {s.label}
          </span>
        ))}
      </p>
      <details>
        <summary>{title}: the numbers</summary>
        <table className="compact">
          <caption className="visually-hidden">{title}, per day</caption>
          <thead>
            <tr>
              <th scope="col">Day (UTC)</th>
              {series.map((s) => (
                <th scope="col" className="num" key={s.key}>
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.map((d) => (
              <tr key={d.day}>
                <th scope="row">{d.day}</th>
                {series.map((s) => (
                  <td className="num" key={s.key}>
                    {value(d, s.key)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
