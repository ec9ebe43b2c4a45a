/**
 * Clerk's status page (Statuspage v2: `/api/v2/status.json`, `/api/v2/summary.json`), following
 * the sandbox's outage switch and windows, with an incident while Clerk is down.
 */
import type { FastifyInstance } from 'fastify';
import type { RouteKey } from '../schemas';
import type { ServerContext } from '../server-context';

const COMPONENTS = ['Frontend API', 'Backend API', 'Dashboard', 'Webhooks', 'Account Portal'] as const;
const INDICATOR_TEXT = { none: 'All Systems Operational', minor: 'Minor Service Outage', major: 'Partial System Outage', critical: 'Major System Outage' } as const;

export async function statusPage(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { admin } = ctx;
  const route = (routeKey: RouteKey) => ({ config: { routeKey } });
  const pageCreated = new Date(admin.startedAt).toISOString();

  const statusNow = () => {
    const down = admin.outage.isDown();
    const indicator = down ? admin.outage.currentIndicator : 'none';
    const page = { id: 'clerk-sandbox', name: 'Clerk (SANDBOX)', url: `${ctx.selfUrl()}/api/v2/status.json`, time_zone: 'Etc/UTC', updated_at: new Date().toISOString() };
    return { down, indicator, page, status: { indicator, description: INDICATOR_TEXT[indicator] } };
  };

  app.get('/api/v2/status.json', route('GET /api/v2/status.json'), async () => {
    const s = statusNow();
    return { page: s.page, status: s.status };
  });

  app.get('/api/v2/summary.json', route('GET /api/v2/summary.json'), async () => {
    const s = statusNow();
    const hit = (name: string): string => {
      if (!s.down) return 'operational';
      if (s.indicator === 'critical') return 'major_outage';
      if (name === 'Backend API' || name === 'Frontend API') return s.indicator === 'major' ? 'major_outage' : 'partial_outage';
      return s.indicator === 'major' ? 'degraded_performance' : 'operational';
    };
    const updated = s.page.updated_at;
    const components = COMPONENTS.map((name, position) => ({
      id: `cmp_${name.toLowerCase().replace(/\s+/g, '_')}`,
      name,
      status: hit(name),
      created_at: pageCreated,
      updated_at: updated,
      position: position + 1,
      description: null,
      showcase: true,
      start_date: null,
      group_id: null,
      page_id: s.page.id,
      group: false,
      only_show_if_degraded: false,
    }));
    const startedAt = new Date(admin.outage.startedAt ?? Date.now()).toISOString();
    const incidents = s.down
      ? [
          {
            id: 'inc_sandbox_outage',
            name: 'Elevated error rates on the Clerk APIs (sandbox outage switch)',
            status: 'investigating',
            created_at: startedAt,
            updated_at: updated,
            monitoring_at: null,
            resolved_at: null,
            impact: s.indicator,
            shortlink: `${ctx.selfUrl()}/api/v2/summary.json`,
            started_at: startedAt,
            page_id: s.page.id,
            incident_updates: [
              {
                id: 'upd_sandbox_outage',
                status: 'investigating',
                body: 'We are investigating elevated error rates. (Clerk sandbox: outage switch on.)',
                incident_id: 'inc_sandbox_outage',
                created_at: startedAt,
                updated_at: startedAt,
                display_at: startedAt,
                affected_components: components.filter((c) => c.status !== 'operational').map((c) => ({ code: c.id, name: c.name, old_status: 'operational', new_status: c.status })),
              },
            ],
            components: components.filter((c) => c.status !== 'operational'),
          },
        ]
      : [];
    return { page: s.page, components, incidents, scheduled_maintenances: [], status: s.status };
  });
}
