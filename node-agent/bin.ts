/** Entry point of the bundled agent (dist/failover-agent.mjs). */
import { main } from './main';

process.exitCode = await main(process.argv.slice(2));
