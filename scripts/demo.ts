import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CircleActionsClient, ProblemError, createCircleActionsClient, unwrap } from '../src/client/index.js';

// `npm run demo`: the whole story of a reading circle, played over HTTP with the typed client
// against a running service (DEMO_BASE_URL, default http://127.0.0.1:3000): an owner opens
// 「每日读书会」, posts a translation project with a reward pool and a task tree, members join with
// their skills, claim through claims/next, submit and get reviewed (one revision, one rejection),
// check in to a challenge, and the pool is settled. It prints the statement and the circle's health
// figures, checks that the payouts add up to the pool, and exits non-zero on any failure.
// Handles carry a per-run suffix, so it can run again and again against the same service.

const BASE_URL = process.env.DEMO_BASE_URL ?? 'http://127.0.0.1:3000';
const RUN = randomBytes(3).toString('hex');
const POOL = { amount: 100_000, unit: 'CNY_cents' };
const ZONE = 'Asia/Shanghai';

let stepNo = 0;
const step = (text: string) => console.log(`[${String(++stepNo).padStart(2)}] ${text}`);

/**
 * fetch that waits out a 429 (the per-address sign-up budget, when the demo runs again and again)
 * or a 503 (a backing service briefly unreachable) as the answer's Retry-After says, a few times.
 * Retrying is safe: a refused request changed nothing, and the creating calls carry an
 * Idempotency-Key.
 */
async function patientFetch(input: Request): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(input.clone());
    if ((response.status !== 429 && response.status !== 503) || attempt >= 5) return response;
    const seconds = Math.min(Number(response.headers.get('retry-after')) || 5, 20);
    console.log(`     (${response.status}: retrying in ${seconds} s)`);
    await response.body?.cancel();
    await sleep(seconds * 1000);
  }
}

interface Person {
  name: string;
  handle: string;
  id: string;
  skills: string[];
  api: CircleActionsClient;
}

async function signUp(name: string, handlePrefix: string, skills: string[]): Promise<Person> {
  const api = createCircleActionsClient(BASE_URL, { fetch: patientFetch });
  const handle = `${handlePrefix}_${RUN}`;
  const session = await unwrap(
    api.POST('/v1/auth/register', { body: { handle, password: `demo-${RUN}-password`, displayName: name } }),
  );
  api.setToken(session.accessToken);
  if (skills.length) await unwrap(api.PATCH('/v1/me', { body: { skills } }));
  return { name, handle, id: session.user.id, skills, api };
}

/** Display width, counting CJK characters as two columns, for aligned tables. */
const width = (text: string) => [...text].reduce((w, c) => w + (/[\u1100-\uffff]/.test(c) ? 2 : 1), 0);
const pad = (text: string, to: number, right = false) =>
  right ? ' '.repeat(Math.max(0, to - width(text))) + text : text + ' '.repeat(Math.max(0, to - width(text)));
const yuan = (cents: number) => `¥${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;

const localToday = (zone: string, plusDays = 0) =>
  new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(new Date(Date.now() + plusDays * 86_400_000));

async function main(): Promise<void> {
  console.log(`Circle Actions demo against ${BASE_URL} (run ${RUN})\n`);

  const owner = await signUp('林老师', 'lin', []);
  step(`${owner.name} (@${owner.handle}) registers`);
  const circle = await unwrap(
    owner.api.POST('/v1/circles', {
      params: { header: { 'Idempotency-Key': randomUUID() } },
      body: { name: '每日读书会', description: '每天读一章经典，一起翻译、批注、讨论。', joinPolicy: 'invite' },
    }),
  );
  await unwrap(
    owner.api.PATCH('/v1/circles/{circleId}', { params: { path: { circleId: circle.id } }, body: { timezone: ZONE } }),
  );
  step(`${owner.name} creates the circle 「${circle.name}」 (time zone ${ZONE})`);

  const invite = await unwrap(
    owner.api.POST('/v1/circles/{circleId}/invites', {
      params: { path: { circleId: circle.id } },
      body: { expiresInSeconds: 86_400, maxUses: 10 },
    }),
  );
  step(`${owner.name} creates an invite code`);

  const project = await unwrap(
    owner.api.POST('/v1/circles/{circleId}/projects', {
      params: { path: { circleId: circle.id }, header: { 'Idempotency-Key': randomUUID() } },
      body: {
        title: '《论语·学而》翻译与批注',
        description: '把《学而》篇译成白话文，为难句写批注，最后通校全篇。',
        rewardPool: POOL,
        leaseSeconds: 3600,
        tasks: [
          {
            key: 'translate',
            title: '翻译《学而》篇',
            children: [
              { title: '翻译第 1-4 章', weight: 3, skills: ['翻译'], priority: 2 },
              { title: '翻译第 5-8 章', weight: 3, skills: ['翻译'], priority: 1 },
              { title: '翻译第 9-16 章', weight: 4, skills: ['翻译'] },
            ],
          },
          {
            title: '为难句写批注',
            children: [
              { title: '批注「学而时习之」', weight: 2, skills: ['批注'] },
              { title: '批注「吾日三省吾身」', weight: 2, skills: ['批注'] },
            ],
          },
          { title: '通校全篇译文', weight: 2, skills: ['校对'], dependsOn: ['translate'] },
        ],
      },
    }),
  );
  step(`${owner.name} posts 「${project.title}」: pool ${POOL.amount} ${POOL.unit} (${yuan(POOL.amount)}), 8 tasks`);
  console.log(`     reward pool: ${POOL.amount} ${POOL.unit}`);

  const tasks = await unwrap(
    owner.api.GET('/v1/projects/{projectId}/tasks', {
      params: { path: { projectId: project.id }, query: { limit: 200 } },
    }),
  );
  const titleOf = new Map(tasks.items.map((task) => [task.id, task.title]));

  const members: Person[] = [];
  for (const [name, prefix, skills] of [
    ['小王', 'wang', ['翻译']],
    ['小李', 'li', ['翻译', '校对']],
    ['阿May', 'may', ['批注']],
    ['陈同学', 'chen', ['翻译', '批注']],
  ] as const) {
    const member = await signUp(name, prefix, [...skills]);
    await unwrap(
      member.api.POST('/v1/circles/{circleId}/members', {
        params: { path: { circleId: circle.id } },
        body: { inviteCode: invite.code },
      }),
    );
    members.push(member);
    step(`${name} (@${member.handle}) registers and joins with skills ${skills.join('、')}`);
  }

  // Rounds of work: everyone asks claims/next for a task that fits, submits, and the owner reviews.
  // The first review of the story asks for a revision, the second a rejection; the rest pass.
  let reviews = 0;
  for (let round = 1; round <= 6; round++) {
    const submitted: { member: Person; claimId: string; task: string }[] = [];
    for (const member of members) {
      const { data: claim, error } = await member.api.POST('/v1/projects/{projectId}/claims/next', {
        params: { path: { projectId: project.id }, header: { 'Idempotency-Key': randomUUID() } },
        body: {},
      });
      if (error?.code === 'no_claimable_task') continue;
      if (!claim) throw new ProblemError(error?.status ?? 500, error!);
      const task = titleOf.get(claim.taskId) ?? claim.taskId;
      await unwrap(
        member.api.POST('/v1/claims/{claimId}/submissions', {
          params: { path: { claimId: claim.id }, header: { 'Idempotency-Key': randomUUID() } },
          body: {
            content: `${member.name}交稿：「${task}」的译文与注释。`,
            links: [`https://example.com/${RUN}/${claim.id}`],
          },
        }),
      );
      step(`${member.name} claims 「${task}」 through claims/next and submits`);
      submitted.push({ member, claimId: claim.id, task });
    }
    if (submitted.length === 0) break;

    for (const { member, claimId, task } of submitted) {
      const review = (body: { decision: 'accept' | 'reject' | 'revise'; score?: number; feedback?: string }) =>
        unwrap(owner.api.POST('/v1/claims/{claimId}/reviews', { params: { path: { claimId } }, body }));
      reviews++;
      if (reviews === 1) {
        await review({ decision: 'revise', feedback: '第 3 章漏译了一句，请补上。' });
        step(`${owner.name} asks ${member.name} to revise 「${task}」`);
        await unwrap(
          member.api.POST('/v1/claims/{claimId}/submissions', {
            params: { path: { claimId } },
            body: { content: `${member.name}修改稿：「${task}」，已补上漏译的句子。` },
          }),
        );
        step(`${member.name} resubmits 「${task}」`);
        await review({ decision: 'accept', score: 100, feedback: '补得好，通过。' });
        step(`${owner.name} accepts the revision of 「${task}」`);
      } else if (reviews === 2) {
        await review({ decision: 'reject', feedback: '这一版与原文出入较大，请其他成员重做。' });
        step(`${owner.name} rejects 「${task}」 by ${member.name}; the task is open again`);
      } else {
        const score = reviews % 3 === 0 ? 120 : 100;
        await review({ decision: 'accept', score, feedback: score > 100 ? '译文流畅，注释用心！' : '通过。' });
        step(`${owner.name} accepts 「${task}」 by ${member.name} (score ${score}%)`);
      }
    }
  }

  const progress = await unwrap(
    owner.api.GET('/v1/projects/{projectId}', { params: { path: { projectId: project.id } } }),
  );
  step(`project progress: ${progress.progress?.tasksDone} of ${progress.progress?.tasksTotal} tasks done`);

  const challenge = await unwrap(
    owner.api.POST('/v1/circles/{circleId}/challenges', {
      params: { path: { circleId: circle.id }, header: { 'Idempotency-Key': randomUUID() } },
      body: {
        title: '21 天晨读打卡',
        description: '每天读一篇文章，摘抄最打动你的一段话。',
        startsOn: localToday(ZONE),
        endsOn: localToday(ZONE, 20),
        timezone: ZONE,
        pointsPerCheckin: 10,
        minContentLength: 10,
      },
    }),
  );
  step(`${owner.name} starts the challenge 「${challenge.title}」`);
  const quotes = [
    '学而时习之，不亦说乎？有朋自远方来，不亦乐乎？',
    '吾日三省吾身：为人谋而不忠乎？与朋友交而不信乎？',
    '温故而知新，可以为师矣。今天重读了《为政》篇。',
    '知之者不如好之者，好之者不如乐之者。读书亦如是。',
  ];
  for (const [i, member] of members.entries()) {
    const checkin = await unwrap(
      member.api.POST('/v1/challenges/{challengeId}/checkins', {
        params: { path: { challengeId: challenge.id } },
        body: { content: quotes[i]! },
      }),
    );
    step(`${member.name} checks in for ${checkin.localDate} (streak ${checkin.streak.current})`);
  }

  const accepted = await unwrap(
    owner.api.POST('/v1/projects/{projectId}/settlements', {
      params: { path: { projectId: project.id }, header: { 'Idempotency-Key': randomUUID() } },
      body: {},
    }),
  );
  step(`${owner.name} settles the pool (settlement ${accepted.id}, ${accepted.status})`);
  const deadline = Date.now() + 60_000;
  let settlement = await unwrap(
    owner.api.GET('/v1/settlements/{settlementId}', { params: { path: { settlementId: accepted.id } } }),
  );
  while (settlement.status !== 'completed') {
    if (settlement.status === 'failed') throw new Error(`settlement failed: ${settlement.failureReason}`);
    if (Date.now() > deadline) throw new Error(`settlement still ${settlement.status} after 60 s`);
    await sleep(250);
    settlement = await unwrap(
      owner.api.GET('/v1/settlements/{settlementId}', { params: { path: { settlementId: accepted.id } } }),
    );
  }
  step(`the settlement is completed (result hash ${settlement.resultHash?.slice(0, 16)}…)`);

  const nameOf = new Map(members.map((m) => [m.id, m.name]));
  const rows = settlement.payouts.map((p) => {
    const percent = (Number(p.share.numerator) / Number(p.share.denominator)) * 100;
    return [
      `${nameOf.get(p.userId) ?? p.handle} @${p.handle}`,
      String(p.points),
      `${percent.toFixed(2)}% (${p.share.numerator}/${p.share.denominator})`,
      `${yuan(p.amount)}${p.roundedUp ? ' +1' : ''}`,
      String(p.amount),
    ];
  });
  const total = settlement.payouts.reduce((sum, p) => sum + p.amount, 0);
  const totalPoints = settlement.payouts.reduce((sum, p) => sum + p.points, 0);
  const header = ['member', 'points', 'share', 'amount', settlement.unit];
  const footer = ['Total', String(totalPoints), '100%', yuan(total), String(total)];
  const widths = header.map((_, c) => Math.max(...[header, ...rows, footer].map((r) => width(r[c]!))));
  const line = (r: string[]) => r.map((cell, c) => pad(cell, widths[c]!, c > 0)).join('  ');
  console.log(`\nSettlement statement: 「${project.title}」\n`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  console.log(line(footer));
  console.log(`\nTotal paid: ${total} ${settlement.unit} of a pool of ${settlement.poolAmount} ${settlement.unit}`);
  if (total !== settlement.poolAmount || settlement.poolAmount !== POOL.amount) {
    throw new Error(`the payouts add up to ${total}, not to the pool of ${settlement.poolAmount}`);
  }

  const health = await unwrap(
    owner.api.GET('/v1/circles/{circleId}/health', {
      params: { path: { circleId: circle.id }, query: { window: '7d' } },
    }),
  );
  console.log(`\nCircle health (${health.window}, ${health.windowStart} to ${health.today}, ${health.timezone})`);
  const figures: [string, string][] = [
    ['members', String(health.members)],
    ['active members', String(health.activeMembers)],
    ['contributor absence factor', String(health.absenceFactor)],
    [
      'top 20% share of points',
      `${(health.top20Share.share * 100).toFixed(1)}% (${health.top20Share.members} members)`,
    ],
    ['Gini of points', health.gini.toFixed(4)],
    ['expiring claims (24 h)', String(health.expiringClaims)],
    ['submissions waiting > 48 h', String(health.staleSubmissions)],
    [
      'median claim to submission',
      health.medianClaimToSubmissionSeconds === null ? '-' : `${health.medianClaimToSubmissionSeconds} s`,
    ],
    ['tasks done this week', String(health.weeklyThroughput.find((w) => w.to === health.today)?.count ?? 0)],
  ];
  for (const [label, value] of figures) console.log(`  ${pad(label, 28)}${value}`);
  console.log('\nDemo finished: every step succeeded and the payouts add up to the pool.');
}

main().catch((err: unknown) => {
  if (err instanceof ProblemError) {
    console.error(`\nDemo failed: ${err.status} ${err.problem.code}: ${err.problem.detail}`);
    for (const e of err.problem.errors ?? []) console.error(`  ${e.path}: ${e.message}`);
  } else {
    console.error('\nDemo failed:', err);
  }
  process.exitCode = 1;
});
