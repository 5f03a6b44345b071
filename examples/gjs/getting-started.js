// SPDX-License-Identifier: LGPL-2.1-or-later
import Tether from 'gi://Tether?version=1.0';

const client = new Tether.Client({uri: ARGV[0] ?? 'unix:/tmp/tether-demo.sock'});
client.addMethod('progress', params => {
    print(`progress: ${params.step} of ${params.of}`);
    return true;
});
await client.open();
const result = await client.call('work', {steps: 3, delay_ms: 200});
print('result:', JSON.stringify(result));
client.close();
